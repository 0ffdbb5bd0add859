#include "cli/version.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace phi3 {

std::string VersionLine(std::string_view program) {
  return absl::StrCat(absl::string_view(program.data(), program.size()), " ", ProjectVersion(),
                      " (git ", GitRevision(), ")");
}

}  // namespace phi3
