# cmake -P script run at every build: writes OUTPUT, the project version and
# the git revision of SOURCE_DIR (or $PHI3_GIT_REVISION, for builds outside a
# git checkout), rewriting it only when the text changes so nothing rebuilds
# needlessly.
#   cmake -DSOURCE_DIR=... -DOUTPUT=... -DVERSION=... -P version_info.cmake
set(revision "$ENV{PHI3_GIT_REVISION}")
if(NOT revision)
  execute_process(
    COMMAND git -C "${SOURCE_DIR}" describe --always --dirty --abbrev=12 --exclude=*
    OUTPUT_VARIABLE revision OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()
if(NOT revision)
  set(revision "unknown")
endif()
file(CONFIGURE OUTPUT "${OUTPUT}" CONTENT [[
// Generated at build time by cmake/version_info.cmake; do not edit.
#include "cli/version.h"

namespace phi3 {

const char* ProjectVersion() { return "@VERSION@"; }
const char* GitRevision() { return "@revision@"; }

}  // namespace phi3
]] @ONLY)
