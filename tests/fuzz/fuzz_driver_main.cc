// A main() for the fuzz targets when the compiler has no libFuzzer (GCC): it
// accepts libFuzzer's command line for the flags the ctest smoke runs use
// (-max_total_time=S, -seed=N, -runs=N, then corpus directories or files),
// runs every corpus input, then random mutations of them (bit flips, byte
// overwrites, truncations, insertions, erasures, splices) until the time or
// run budget is spent. No coverage feedback: this is a smoke run; the real
// fuzzing is `clang` + libFuzzer (tests/fuzz/README.md). On a crash (abort,
// or a sanitizer report, which aborts) the input is written to
// ./crash-driver-input first, as libFuzzer writes crash-<sha1>.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

void AddInputs(const std::string& path, std::vector<std::string>* inputs) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR* dir = opendir(path.c_str());
    if (dir == nullptr) return;
    std::vector<std::string> names;
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') names.push_back(path + "/" + e->d_name);
    }
    closedir(dir);
    std::sort(names.begin(), names.end());  // same order, same run
    for (const std::string& name : names) AddInputs(name, inputs);
    return;
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  inputs->push_back(buffer.str());
}

// The input being run, for the crash handler.
const uint8_t* current_data = nullptr;
size_t current_size = 0;

void SaveCurrentInput(int signal_number) {
  const int fd = open("crash-driver-input", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    if (write(fd, current_data, current_size) < 0) {}
    close(fd);
  }
  static const char kMessage[] = "fuzz driver: crashing input written to crash-driver-input\n";
  if (write(2, kMessage, sizeof(kMessage) - 1) < 0) {}
  signal(signal_number, SIG_DFL);
  raise(signal_number);
}

void Run(const std::string& input) {
  // A copy in its own allocation, so ASan catches reads past its end.
  std::vector<uint8_t> copy(input.begin(), input.end());
  current_data = copy.data();
  current_size = copy.size();
  LLVMFuzzerTestOneInput(copy.data(), copy.size());
}

std::string Mutate(const std::vector<std::string>& inputs, std::mt19937_64& rng) {
  auto pick = [&](uint64_t n) { return n == 0 ? 0 : rng() % n; };
  std::string s = inputs[pick(inputs.size())];
  const int num_mutations = 1 + static_cast<int>(pick(6));
  for (int m = 0; m < num_mutations; ++m) {
    switch (pick(6)) {
      case 0:
        if (!s.empty()) s[pick(s.size())] ^= static_cast<char>(1u << pick(8));
        break;
      case 1:
        if (!s.empty()) s[pick(s.size())] = static_cast<char>(rng());
        break;
      case 2:
        s.resize(pick(s.size() + 1));
        break;
      case 3: {
        std::string ins(1 + pick(16), '\0');
        for (char& c : ins) c = static_cast<char>(rng());
        s.insert(pick(s.size() + 1), ins);
        break;
      }
      case 4:
        if (!s.empty()) s.erase(pick(s.size()), 1 + pick(16));
        break;
      case 5: {  // splice in a piece of another input
        const std::string& other = inputs[pick(inputs.size())];
        const size_t at = pick(other.size() + 1);
        s.insert(pick(s.size() + 1), other.substr(at, pick(64)));
        break;
      }
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  double max_seconds = 3;
  uint64_t seed = 1;
  long max_runs = -1;
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (std::strncmp(a, "-max_total_time=", 16) == 0) {
      max_seconds = std::atof(a + 16);
    } else if (std::strncmp(a, "-seed=", 6) == 0) {
      seed = std::strtoull(a + 6, nullptr, 10);
    } else if (std::strncmp(a, "-runs=", 6) == 0) {
      max_runs = std::atol(a + 6);
    } else if (a[0] == '-') {
      std::fprintf(stderr, "fuzz driver: ignoring %s (libFuzzer flag)\n", a);
    } else {
      AddInputs(a, &inputs);
    }
  }
  if (inputs.empty()) inputs.push_back("");
  for (int signal_number : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) {
    signal(signal_number, SaveCurrentInput);
  }
  for (const std::string& input : inputs) Run(input);
  std::mt19937_64 rng(seed);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(max_seconds * 1000));
  long runs = static_cast<long>(inputs.size());
  while ((max_runs < 0 || runs < max_runs) && std::chrono::steady_clock::now() < deadline) {
    Run(Mutate(inputs, rng));
    ++runs;
  }
  std::printf("fuzz driver: %ld inputs run (%zu from the corpus), no crash\n", runs,
              inputs.size());
  return 0;
}
