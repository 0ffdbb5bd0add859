#!/usr/bin/env bash
# Installs what is missing, then configures and builds phi3serve in ./build.
#   scripts/setup.sh            what building and running the server needs
#                               (scripts/deps/run-apt.txt)
#   scripts/setup.sh --tests    that plus what the test suite needs
#                               (scripts/deps/test-apt.txt, test-npm.txt)
# Idempotent: a second run with nothing changed only asks ninja, which finds
# nothing to do.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${PHI3_BUILD_DIR:-$root/build}
with_tests=0
[[ ${1:-} == --tests ]] && with_tests=1

# Lines of a deps list, comments and blanks dropped.
read_list() { sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$1"; }

apt_packages=($(read_list "$root/scripts/deps/run-apt.txt"))
((with_tests)) && apt_packages+=($(read_list "$root/scripts/deps/test-apt.txt"))
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere than Debian (e.g. NodeSource); accept those.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
# Likewise kubectl (e.g. Google's `kubectl` package, which conflicts with
# Debian's kubernetes-client).
if command -v kubectl >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ $p == kubernetes-client ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=(); [[ $(id -u) == 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages, each folder from its committed lock file (tests/oracle holds
# llama.cpp's prebuilt CPU libraries inside node-llama-cpp: the test oracle and
# benchmark baseline). --ignore-scripts so nothing is ever compiled or
# downloaded by an install script.
if ((with_tests)); then
  for rel in $(read_list "$root/scripts/deps/test-npm.txt"); do
    dir=$root/$rel
    [[ -f $dir/package-lock.json ]] || continue
    stamp=$dir/node_modules/.phi3-installed
    if [[ ! -f $stamp || $dir/package-lock.json -nt $stamp ]]; then
      echo "setup: installing npm packages in $rel"
      (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
      touch "$stamp"
    fi
  done
fi

if [[ ! -f $build_dir/build.ninja ]]; then
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
# A build first configured by run.sh (no GoogleTest then) turns its tests on.
if ((with_tests)) && grep -q '^BUILD_TESTING:BOOL=OFF' "$build_dir/CMakeCache.txt"; then
  cmake "$build_dir" -DBUILD_TESTING=ON
fi
cmake --build "$build_dir" -j "$(nproc)"
