#include "tests/integration/process_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <regex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

extern char** environ;

namespace phi3::integration {
namespace {

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::vector<std::string> Environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  for (const std::string& x : extra) env.push_back(x);
  return env;
}

// Spawns with stdin/stdout/stderr from the given fds (-1: /dev/null).
pid_t Spawn(const std::vector<std::string>& argv_in, const std::vector<std::string>& env_extra,
            int in_fd, int out_fd, int err_fd) {
  std::vector<std::string> argv = argv_in;
  std::vector<std::string> env = Environment(env_extra);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  auto wire = [&](int fd, int target) {
    if (fd >= 0) {
      posix_spawn_file_actions_adddup2(&actions, fd, target);
    } else {
      posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_RDWR, 0);
    }
  };
  wire(in_fd, 0);
  wire(out_fd, 1);
  wire(err_fd, 2);
  pid_t pid = -1;
  auto cargv = CStrings(argv);
  auto cenv = CStrings(env);
  if (posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, cargv.data(), cenv.data()) != 0) {
    pid = -1;
  }
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

}  // namespace

CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout,
                         const std::vector<std::string>& env, const std::string& input) {
  CommandResult result;
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) return result;
  const pid_t pid = Spawn(argv, env, in[0], out[1], err[1]);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    close(in[1]);
    close(out[0]);
    close(err[0]);
    result.err = "cannot spawn " + argv[0];
    return result;
  }
  if (!input.empty()) (void)!write(in[1], input.data(), input.size());
  close(in[1]);
  const absl::Time deadline = absl::Now() + timeout;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  bool killed = false;
  while (open_fds > 0) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) {
      kill(pid, SIGKILL);
      killed = true;
      break;
    }
    if (poll(fds, 2, static_cast<int>(std::min<int64_t>(ms, 1000))) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buffer[4096];
      const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, n);
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!killed && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::string& server_path, std::vector<std::string> args, absl::Duration timeout) {
  auto has = [&](const std::string& flag) {
    for (const std::string& a : args) {
      if (a == flag || a.rfind(flag + "=", 0) == 0) return true;
    }
    return false;
  };
  if (!has("--listen")) args.push_back("--listen=127.0.0.1:0");
  if (!has("--metrics-listen")) args.push_back("--metrics-listen=127.0.0.1:0");
  std::vector<std::string> argv = {server_path};
  argv.insert(argv.end(), args.begin(), args.end());
  int err[2];
  if (pipe2(err, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  std::unique_ptr<ServerProcess> server(new ServerProcess());
  server->pid_ = Spawn(argv, {}, -1, -1, err[1]);
  close(err[1]);
  if (server->pid_ < 0) {
    close(err[0]);
    return absl::InternalError("cannot spawn " + server_path);
  }
  const int fd = err[0];
  server->reader_ = std::thread([s = server.get(), fd] { s->ReadLog(fd); });
  const std::regex ready(R"(ready grpc=(\S+) metrics=(\S+) http=(\S+))");
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::smatch m;
    const std::string log = server->log();
    if (std::regex_search(log, m, ready)) {
      server->address_ = m[1];
      server->metrics_address_ = m[2];
      server->http_address_ = m[3];
      return server;
    }
    if (server->WaitForExit(absl::Milliseconds(20)) != -1 || server->exited_) {
      return absl::FailedPreconditionError(
          absl::StrCat("phi3-server exited with ", server->exit_code_, ": ", server->log()));
    }
  }
  return absl::DeadlineExceededError("phi3-server not ready in time: " + server->log());
}

void ServerProcess::ReadLog(int fd) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    absl::MutexLock lock(&mu_);
    log_.append(buffer, n);
  }
  close(fd);
}

std::string ServerProcess::log() const {
  absl::MutexLock lock(&mu_);
  return log_;
}

bool ServerProcess::WaitForLog(const std::string& text, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto found = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return log_.find(text) != std::string::npos;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&found), timeout);
}

void ServerProcess::Signal(int signal_number) {
  if (!exited_) kill(pid_, signal_number);
}

int ServerProcess::WaitForExit(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!exited_) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      break;
    }
    if (absl::Now() >= deadline) return -1;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return exit_code_;
}

ServerProcess::~ServerProcess() {
  if (!exited_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    WaitForExit(absl::Seconds(10));
  }
  if (reader_.joinable()) reader_.join();
}

absl::StatusOr<std::string> HttpGet(const std::string& address, const std::string& path) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError("bad address " + address);
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return absl::UnavailableError("cannot connect to " + address);
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", address, "\r\n\r\n");
  (void)!write(fd, request.data(), request.size());
  std::string response;
  char buffer[8192];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof buffer)) > 0) response.append(buffer, n);
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || body == std::string::npos) {
    return absl::DataLossError("bad HTTP response: " + response.substr(0, 200));
  }
  if (response.find(" 200 ") == std::string::npos || response.find(" 200 ") > body) {
    return absl::UnavailableError("HTTP error: " + response.substr(0, response.find("\r\n")));
  }
  return response.substr(body + 4);
}

absl::StatusOr<std::string> JsonStringField(const std::string& json, const std::string& name) {
  const std::string key = "\"" + name + "\":";
  size_t p = json.find(key);
  if (p == std::string::npos) return absl::NotFoundError("no field " + name);
  p += key.size();
  while (p < json.size() && json[p] == ' ') ++p;
  if (p >= json.size() || json[p] != '"') return absl::InvalidArgumentError(name + " is not a string");
  std::string out;
  for (++p; p < json.size() && json[p] != '"'; ++p) {
    if (json[p] != '\\') {
      out.push_back(json[p]);
      continue;
    }
    const char e = json[++p];
    switch (e) {
      case 'n': out.push_back('\n'); break;
      case 't': out.push_back('\t'); break;
      case 'r': out.push_back('\r'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'u': {
        unsigned code = std::stoul(json.substr(p + 1, 4), nullptr, 16);
        p += 4;
        if (code >= 0xD800 && code < 0xDC00 && json.compare(p + 1, 2, "\\u") == 0) {
          const unsigned low = std::stoul(json.substr(p + 3, 4), nullptr, 16);
          code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
          p += 6;
        }
        if (code < 0x80) {
          out.push_back(static_cast<char>(code));
        } else if (code < 0x800) {
          out.push_back(static_cast<char>(0xC0 | (code >> 6)));
          out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
        } else if (code < 0x10000) {
          out.push_back(static_cast<char>(0xE0 | (code >> 12)));
          out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
          out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
        } else {
          out.push_back(static_cast<char>(0xF0 | (code >> 18)));
          out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
          out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
          out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
        }
        break;
      }
      default: out.push_back(e);
    }
  }
  return out;
}

absl::StatusOr<std::vector<int>> JsonIntArrayField(const std::string& json,
                                                   const std::string& name) {
  const std::string key = "\"" + name + "\":";
  size_t p = json.find(key);
  if (p == std::string::npos) return absl::NotFoundError("no field " + name);
  p = json.find('[', p);
  const size_t end = json.find(']', p);
  if (p == std::string::npos || end == std::string::npos) {
    return absl::InvalidArgumentError(name + " is not an array");
  }
  std::vector<int> values;
  std::string number;
  for (size_t i = p + 1; i <= end; ++i) {
    if (json[i] == ',' || json[i] == ']') {
      int v;
      if (!number.empty()) {
        if (!absl::SimpleAtoi(number, &v)) return absl::InvalidArgumentError("bad int " + number);
        values.push_back(v);
      }
      number.clear();
    } else if (json[i] != ' ') {
      number.push_back(json[i]);
    }
  }
  return values;
}

absl::StatusOr<double> JsonNumberField(const std::string& json, const std::string& name) {
  const std::string key = "\"" + name + "\":";
  size_t p = json.find(key);
  if (p == std::string::npos) return absl::NotFoundError("no field " + name);
  p += key.size();
  size_t end = json.find_first_of(",}", p);
  double v;
  if (!absl::SimpleAtod(json.substr(p, end - p), &v)) {
    return absl::InvalidArgumentError(name + " is not a number");
  }
  return v;
}

int HoldFreePort(int* fd) {
  *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(*fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  listen(*fd, 1);
  socklen_t len = sizeof addr;
  getsockname(*fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

}  // namespace phi3::integration
