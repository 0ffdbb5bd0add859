#include "service/ledger/testing/test_postgres.h"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace phi3::ledger::testing {
namespace {

// The newest /usr/lib/postgresql/N/bin holding initdb and postgres.
std::string FindBinDir() {
  std::vector<std::string> dirs;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string bin = entry.path().string() + "/bin";
    if (std::filesystem::exists(bin + "/initdb") && std::filesystem::exists(bin + "/postgres")) {
      dirs.push_back(bin);
    }
  }
  std::sort(dirs.begin(), dirs.end(), [](const std::string& a, const std::string& b) {
    return std::atoi(a.c_str() + 20) < std::atoi(b.c_str() + 20);  // after "/usr/lib/postgresql/"
  });
  return dirs.empty() ? "" : dirs.back();
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// Exit status of `pid`, or -1 if it did not end within `timeout`.
int WaitFor(pid_t pid, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0) return -1;
    if (absl::Now() >= end) return -1;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<TestPostgres>> TestPostgres::Create() {
  std::unique_ptr<TestPostgres> pg(new TestPostgres());
  pg->bin_dir_ = FindBinDir();
  if (pg->bin_dir_.empty()) {
    return absl::FailedPreconditionError(
        "no PostgreSQL server under /usr/lib/postgresql (install Debian package postgresql)");
  }
  std::string templ = std::filesystem::temp_directory_path().string() + "/phi3_pg_XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) return absl::InternalError("mkdtemp failed");
  pg->dir_ = templ;
  if (geteuid() == 0) {
    const passwd* pw = getpwnam("postgres");
    if (pw == nullptr) {
      return absl::FailedPreconditionError("running as root, but there is no `postgres` user");
    }
    pg->switch_user_ = true;
    pg->uid_ = pw->pw_uid;
    pg->gid_ = pw->pw_gid;
    if (chown(pg->dir_.c_str(), pg->uid_, pg->gid_) != 0) {
      return absl::InternalError(absl::StrCat("chown ", pg->dir_, ": ", std::strerror(errno)));
    }
  }
  if (absl::Status s = pg->RunAsServerUser({pg->bin_dir_ + "/initdb", "-D", pg->dir_ + "/data",
                                            "-U", "phi3", "-A", "trust", "--no-sync",
                                            "--no-instructions"});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = pg->Start(); !s.ok()) return s;
  return pg;
}

TestPostgres::~TestPostgres() {
  Stop().IgnoreError();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string TestPostgres::uri() const {
  return absl::StrCat("postgresql://phi3@127.0.0.1:", port_, "/postgres");
}

pid_t TestPostgres::SpawnAsServerUser(const std::vector<std::string>& argv,
                                      const std::string& log_path) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid != 0) return pid;
  // Child: only async-signal-safe calls until exec.
  const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (log >= 0) {
    dup2(log, 1);
    dup2(log, 2);
  }
  if (switch_user_ && (setgroups(0, nullptr) != 0 || setgid(gid_) != 0 || setuid(uid_) != 0)) {
    _exit(126);
  }
  execv(args[0], args.data());
  _exit(127);
}

absl::Status TestPostgres::RunAsServerUser(const std::vector<std::string>& argv) {
  const std::string log = dir_ + "/command.log";
  const pid_t pid = SpawnAsServerUser(argv, log);
  if (pid < 0) return absl::InternalError("fork failed");
  const int code = WaitFor(pid, absl::Seconds(120));
  if (code == 0) return absl::OkStatus();
  if (code < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  return absl::InternalError(
      absl::StrCat(argv[0], " failed (", code, "): ", ReadAll(log)));
}

absl::Status TestPostgres::Start() {
  if (pid_ > 0) return absl::OkStatus();
  if (port_ == 0) port_ = FreePort();
  const std::string log = dir_ + "/postgres.log";
  pid_ = SpawnAsServerUser({bin_dir_ + "/postgres", "-D", dir_ + "/data", "-h", "127.0.0.1",
                            "-p", absl::StrCat(port_), "-k", dir_, "-c", "fsync=off"},
                           log);
  if (pid_ < 0) return absl::InternalError("fork failed");
  const std::string conninfo =
      absl::StrCat("host=127.0.0.1 port=", port_, " user=phi3 dbname=postgres connect_timeout=2");
  const absl::Time end = absl::Now() + absl::Seconds(30);
  while (absl::Now() < end) {
    if (PQping(conninfo.c_str()) == PQPING_OK) return absl::OkStatus();
    if (WaitFor(pid_, absl::ZeroDuration()) >= 0) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("postgres exited: ", ReadAll(log)));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  Stop().IgnoreError();
  return absl::DeadlineExceededError(absl::StrCat("postgres not ready in 30 s: ", ReadAll(log)));
}

absl::Status TestPostgres::Stop() {
  if (pid_ <= 0) return absl::OkStatus();
  kill(pid_, SIGINT);  // fast shutdown: disconnects clients, then exits
  int code = WaitFor(pid_, absl::Seconds(20));
  if (code < 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_ = -1;
  return code < 0 ? absl::DeadlineExceededError("postgres did not stop in 20 s; killed")
                  : absl::OkStatus();
}

}  // namespace phi3::ledger::testing
