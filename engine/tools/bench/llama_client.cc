#include "engine/tools/bench/llama_client.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace phi3::bench {

absl::StatusOr<std::unique_ptr<LlamaClient>> LlamaClient::Start(
    const LlamaClientOptions& options) {
  int in_pipe[2], out_pipe[2];  // [0] read end, [1] write end
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);

  std::vector<std::string> args = {options.node,
                                   options.script,
                                   "--serve",
                                   "--model",
                                   options.model_path,
                                   "--threads",
                                   absl::StrCat(options.num_threads),
                                   "--parallel-tokens",
                                   absl::StrCat(options.parallel_tokens)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  auto client = std::unique_ptr<LlamaClient>(new LlamaClient());
  const int rc = posix_spawnp(&client->pid_, options.node.c_str(), &actions, nullptr,
                              argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in_pipe[0]);
  close(out_pipe[1]);
  if (rc != 0) {
    close(in_pipe[1]);
    close(out_pipe[0]);
    client->pid_ = -1;
    return absl::InternalError(
        absl::StrCat("cannot start '", options.node, "': ", std::strerror(rc)));
  }
  client->to_child_ = fdopen(in_pipe[1], "w");
  client->from_child_ = fdopen(out_pipe[0], "r");
  auto line = client->ReadLine();
  if (!line.ok()) return line.status();
  auto info = ParseFlatJson(*line);
  if (!info.ok()) return info.status();
  if (!info->Number("ready").value_or(0)) {
    return absl::InternalError(absl::StrCat("bench.mjs did not report ready: ", *line));
  }
  client->info_ = *std::move(info);
  return client;
}

LlamaClient::~LlamaClient() {
  if (to_child_ != nullptr) std::fclose(to_child_);
  if (from_child_ != nullptr) std::fclose(from_child_);
  if (pid_ > 0) {
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

absl::StatusOr<std::string> LlamaClient::ReadLine() {
  std::string line;
  int c;
  while ((c = std::fgetc(from_child_)) != EOF) {
    if (c == '\n') return line;
    line.push_back(static_cast<char>(c));
  }
  return absl::InternalError("bench.mjs exited early (see its stderr above)");
}

absl::StatusOr<FlatJson> LlamaClient::Run(const std::string& figure) {
  if (std::fprintf(to_child_, "%s\n", figure.c_str()) < 0 || std::fflush(to_child_) != 0) {
    return absl::InternalError("cannot write to bench.mjs");
  }
  auto line = ReadLine();
  if (!line.ok()) return line.status();
  auto reply = ParseFlatJson(*line);
  if (!reply.ok()) return reply.status();
  if (!reply->String("error").empty()) {
    return absl::InternalError(
        absl::StrCat("llama.cpp ", figure, ": ", reply->String("error")));
  }
  if (!reply->Number("value").has_value()) {
    return absl::InternalError(absl::StrCat("llama.cpp ", figure, ": no value in ", *line));
  }
  return reply;
}

}  // namespace phi3::bench
