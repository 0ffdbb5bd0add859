// A throwaway PostgreSQL server for tests: initdb into a temporary
// directory, postgres on 127.0.0.1 at a free port, trust authentication for
// user "phi3". As root (CI) the server runs as the `postgres` system user,
// since PostgreSQL refuses to run as root. Every wait is bounded; the
// destructor stops the server and removes the directory.
#ifndef PHI3_SERVICE_LEDGER_TESTING_TEST_POSTGRES_H_
#define PHI3_SERVICE_LEDGER_TESTING_TEST_POSTGRES_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace phi3::ledger::testing {

class TestPostgres {
 public:
  // initdb + Start(). FailedPrecondition when no PostgreSQL server binaries
  // are installed (Debian package `postgresql`).
  static absl::StatusOr<std::unique_ptr<TestPostgres>> Create();
  ~TestPostgres();

  // postgresql://phi3@127.0.0.1:PORT/postgres
  std::string uri() const;
  int port() const { return port_; }

  // Stops the server (fast shutdown) / starts it again on the same port.
  absl::Status Stop();
  absl::Status Start();

 private:
  TestPostgres() = default;
  // Runs `argv` as the server's user and waits for it (bounded).
  absl::Status RunAsServerUser(const std::vector<std::string>& argv);
  pid_t SpawnAsServerUser(const std::vector<std::string>& argv, const std::string& log_path);

  std::string bin_dir_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  bool switch_user_ = false;
};

}  // namespace phi3::ledger::testing

#endif  // PHI3_SERVICE_LEDGER_TESTING_TEST_POSTGRES_H_
