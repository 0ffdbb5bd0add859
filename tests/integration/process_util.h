// Child processes and small loopback helpers for the integration tests:
// running a command with a timeout, running phi3-server until its ready line,
// a plain HTTP GET, and a minimal JSON field reader for the tools' --json output.
#ifndef PHI3_TESTS_INTEGRATION_PROCESS_UTIL_H_
#define PHI3_TESTS_INTEGRATION_PROCESS_UTIL_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace phi3::integration {

struct CommandResult {
  int exit_code = -1;  // -1: killed at the timeout or by a signal
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with `env` added to the environment, feeding `input`
// on stdin; kills it at `timeout`.
CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout,
                         const std::vector<std::string>& env = {}, const std::string& input = "");

// A running phi3-server. The destructor kills it (SIGKILL) if still alive.
class ServerProcess {
 public:
  // Starts `server_path` with `args` plus --listen/--metrics-listen on
  // 127.0.0.1:0 (unless given) and waits for the "ready" line.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::string& server_path, std::vector<std::string> args,
      absl::Duration timeout = absl::Seconds(60));
  ~ServerProcess();

  const std::string& address() const { return address_; }          // 127.0.0.1:PORT
  const std::string& metrics_address() const { return metrics_address_; }
  // The OpenAI-compatible HTTP API's HOST:PORT ("off" without --http-listen).
  const std::string& http_address() const { return http_address_; }
  pid_t pid() const { return pid_; }
  void Signal(int signal_number);
  // Exit code after the process ends, or -1 at the timeout / on a signal.
  int WaitForExit(absl::Duration timeout);
  // Waits until the server's log contains `text`.
  bool WaitForLog(const std::string& text, absl::Duration timeout);
  std::string log() const;

 private:
  ServerProcess() = default;
  void ReadLog(int fd);

  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
  std::string address_;
  std::string metrics_address_;
  std::string http_address_;
  std::thread reader_;
  mutable absl::Mutex mu_;
  std::string log_ ABSL_GUARDED_BY(mu_);
};

// GET http://address/path; the response body, or an error.
absl::StatusOr<std::string> HttpGet(const std::string& address, const std::string& path);

// From one JSON object (as printed by phi3-run/phi3-client --json): the value
// of a top-level string field (unescaped), or of an integer array field.
absl::StatusOr<std::string> JsonStringField(const std::string& json, const std::string& name);
absl::StatusOr<std::vector<int>> JsonIntArrayField(const std::string& json, const std::string& name);
// A number anywhere in the object, by key (first occurrence).
absl::StatusOr<double> JsonNumberField(const std::string& json, const std::string& name);

// A free TCP port on 127.0.0.1 held open by `*fd` (caller closes it).
int HoldFreePort(int* fd);

}  // namespace phi3::integration

#endif  // PHI3_TESTS_INTEGRATION_PROCESS_UTIL_H_
