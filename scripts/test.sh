#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit,
# conformance against llama.cpp, integration over loopback, fuzz smoke).
# Extra arguments go to ctest, e.g. `scripts/test.sh -L unit`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${PHI3_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh" --tests
cd "$build_dir"
ctest --output-on-failure -j "$(nproc)" "$@"
