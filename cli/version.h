// The version of this build: the project version (CMakeLists.txt) and the
// git revision it was built from, both fixed at build time.
#ifndef PHI3_CLI_VERSION_H_
#define PHI3_CLI_VERSION_H_

#include <string>
#include <string_view>

namespace phi3 {

// "0.1.0".
const char* ProjectVersion();
// "1a2b3c4d5e6f", with "-dirty" for uncommitted changes; "unknown" outside git.
const char* GitRevision();
// "phi3-server 0.1.0 (git 1a2b3c4d5e6f)".
std::string VersionLine(std::string_view program);

}  // namespace phi3

#endif  // PHI3_CLI_VERSION_H_
