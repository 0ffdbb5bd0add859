#include "engine/sampling/stop_matcher.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace phi3 {
namespace {

TEST(StopMatcherTest, NoStopsPassesThrough) {
  StopMatcher m({});
  EXPECT_EQ(m.Push("abc"), "abc");
  EXPECT_FALSE(m.matched());
  EXPECT_EQ(m.TakeHeld(), "");
}

TEST(StopMatcherTest, MatchAcrossPushesIsNeverReleased) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.Push("hello E"), "hello ");
  EXPECT_EQ(m.Push("N"), "");
  EXPECT_FALSE(m.matched());
  EXPECT_EQ(m.Push("Dtrailing"), "");
  EXPECT_TRUE(m.matched());
  EXPECT_EQ(m.TakeHeld(), "");
}

TEST(StopMatcherTest, FalseStartIsReleased) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.Push("xEN"), "x");
  EXPECT_EQ(m.Push("x"), "ENx");
  EXPECT_FALSE(m.matched());
}

TEST(StopMatcherTest, TextBeforeMatchStaysHeldForTail) {
  StopMatcher m({"\n\n", "###"});
  EXPECT_EQ(m.Push("ab#"), "ab");
  EXPECT_EQ(m.Push("c##"), "#c");  // "#c" cannot start "###"; "##" can
  EXPECT_EQ(m.Push("x\n"), "##x");
  EXPECT_EQ(m.Push("\nzz"), "");
  EXPECT_TRUE(m.matched());
  EXPECT_EQ(m.TakeHeld(), "");
  EXPECT_EQ(m.Push("more"), "");
}

TEST(StopMatcherTest, EarliestStopWinsAndPrefixIsTail) {
  StopMatcher m({"bcd", "cd"});
  EXPECT_EQ(m.Push("a"), "a");
  EXPECT_EQ(m.Push("bc"), "");  // "bc" may become "bcd"
  EXPECT_EQ(m.Push("dX"), "");
  EXPECT_TRUE(m.matched());
  EXPECT_EQ(m.TakeHeld(), "");  // "bcd" starts right after "a"
}

TEST(StopMatcherTest, HeldTextReturnedAtFinishWithoutMatch) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.Push("go ST"), "go ");
  EXPECT_EQ(m.TakeHeld(), "ST");
}

TEST(StopMatcherTest, PrefixOfMatchInSamePushIsTail) {
  StopMatcher m({"<END>"});
  EXPECT_EQ(m.Push("x<"), "x");
  EXPECT_EQ(m.Push("y <END> z"), "");
  EXPECT_TRUE(m.matched());
  EXPECT_EQ(m.TakeHeld(), "<y ");
}

TEST(StopMatcherTest, MultiByteStopString) {
  StopMatcher m({"€€"});
  EXPECT_EQ(m.Push("a€"), "a");
  EXPECT_EQ(m.Push("b"), "€b");
  EXPECT_EQ(m.Push("€"), "");
  EXPECT_EQ(m.Push("€"), "");
  EXPECT_TRUE(m.matched());
}

}  // namespace
}  // namespace phi3
