#include "tests/bench/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace phi3::bench {
namespace {

// "... key=VALUE ..." -> VALUE (up to the next space).
std::string Field(const std::string& line, const std::string& key) {
  const size_t pos = line.find(key + "=");
  if (pos == std::string::npos) return "";
  const size_t begin = pos + key.size() + 1;
  return line.substr(begin, line.find(' ', begin) - begin);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::vector<std::string>& args, absl::Duration timeout) {
  int err_pipe[2];  // [0] read end, [1] write end
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);

  auto server = std::unique_ptr<ServerProcess>(new ServerProcess());
  const int rc =
      posix_spawn(&server->pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(err_pipe[1]);
  if (rc != 0) {
    close(err_pipe[0]);
    server->pid_ = -1;
    return absl::InternalError(absl::StrCat("cannot start '", args[0], "': ", std::strerror(rc)));
  }
  const int fd = err_pipe[0];
  ServerProcess* self = server.get();
  server->forwarder_ = std::thread([self, fd] { self->ForwardStderr(fd); });

  absl::MutexLock lock(&server->mu_);
  auto done = [self]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
    return self->ready_ || self->exited_;
  };
  server->mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  if (server->ready_) return server;
  if (server->exited_) {
    return absl::InternalError(absl::StrCat(args[0], " exited before its ready line"));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(args[0], ": no ready line within ", absl::FormatDuration(timeout)));
}

void ServerProcess::ForwardStderr(int fd) {
  std::FILE* in = fdopen(fd, "r");
  std::string line;
  int c;
  auto flush = [&] {
    std::fprintf(stderr, "[phi3-server] %s\n", line.c_str());
    if (line.find("ready grpc=") != std::string::npos) {
      absl::MutexLock lock(&mu_);
      if (!ready_) {
        grpc_address_ = Field(line, "grpc");
        metrics_address_ = Field(line, "metrics");
        ready_ = true;
      }
    }
    line.clear();
  };
  while ((c = std::fgetc(in)) != EOF) {
    if (c == '\n') {
      flush();
    } else {
      line.push_back(static_cast<char>(c));
    }
  }
  if (!line.empty()) flush();
  std::fclose(in);
  absl::MutexLock lock(&mu_);
  exited_ = true;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  if (forwarder_.joinable()) forwarder_.join();
}

int64_t ProcessResidentBytes(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
      int64_t kib = 0;
      if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kib)) return kib * 1024;
    }
  }
  return -1;
}

absl::StatusOr<std::map<std::string, double>> ScrapeMetrics(const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("metrics address '", host_port,
                                                   "' is not HOST:PORT"));
  }
  const std::string host = host_port.substr(0, colon), port = host_port.substr(colon + 1);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", host_port));
  }
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool connected = fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) == 0;
  freeaddrinfo(found);
  if (!connected) {
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat("cannot connect to ", host_port));
  }
  const std::string request =
      absl::StrCat("GET /metrics HTTP/1.0\r\nHost: ", host_port, "\r\n\r\n");
  (void)!write(fd, request.data(), request.size());
  std::string body;
  char buf[16384];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) body.append(buf, n);
  close(fd);
  std::map<std::string, double> values;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    line = absl::StripTrailingAsciiWhitespace(line);
    if (line.empty() || line[0] == '#' || line.find('{') != absl::string_view::npos) continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    double v = 0;
    if (parts.size() >= 2 && absl::SimpleAtod(parts[1], &v)) values[parts[0]] = v;
  }
  return values;
}

}  // namespace phi3::bench
