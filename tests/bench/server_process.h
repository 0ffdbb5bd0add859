// phi3-serve-bench's handle on a phi3-server child process: started with
// --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0, its stderr forwarded line
// by line (prefixed) to ours, the ready line parsed for the two addresses.
// Also reads a running server's resident memory and Prometheus counters.
//
// Thread safety: thread-compatible; the stderr forwarder is internal.
#ifndef PHI3_TESTS_BENCH_SERVER_PROCESS_H_
#define PHI3_TESTS_BENCH_SERVER_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace phi3::bench {

class ServerProcess {
 public:
  // Runs `argv` (argv[0] = the phi3-server path; the caller adds --listen and
  // --metrics-listen) and waits up to `timeout` for its ready line.
  // Errors: Internal when it cannot start or exits before ready (its stderr
  // has been forwarded), DeadlineExceeded when no ready line came in time.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const std::vector<std::string>& argv,
                                                              absl::Duration timeout);
  // SIGTERM (the server drains and exits), then reaps it.
  ~ServerProcess();

  pid_t pid() const { return pid_; }
  const std::string& grpc_address() const { return grpc_address_; }
  const std::string& metrics_address() const { return metrics_address_; }

 private:
  ServerProcess() = default;
  void ForwardStderr(int fd);

  pid_t pid_ = -1;
  std::thread forwarder_;
  absl::Mutex mu_;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  bool exited_ ABSL_GUARDED_BY(mu_) = false;
  std::string grpc_address_, metrics_address_;  // written before ready_ is set
};

// VmRSS of process `pid` in bytes, or -1.
int64_t ProcessResidentBytes(pid_t pid);

// GET http://HOST:PORT/metrics and the value of every unlabelled sample
// ("name value" lines). Unavailable when the address cannot be reached.
absl::StatusOr<std::map<std::string, double>> ScrapeMetrics(const std::string& host_port);

}  // namespace phi3::bench

#endif  // PHI3_TESTS_BENCH_SERVER_PROCESS_H_
