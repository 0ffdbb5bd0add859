#include "engine/sched/scheduler.h"

#include "gtest/gtest.h"

namespace phi3 {
namespace {
TEST(SchedulerTest, Placeholder) {}
}  // namespace
}  // namespace phi3
