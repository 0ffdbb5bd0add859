#!/usr/bin/env bash
# Installs what is missing (Debian packages, the npm oracle), then configures
# and builds phi3serve in ./build. Idempotent: a second run with nothing
# changed only asks ninja, which finds nothing to do.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${PHI3_BUILD_DIR:-$root/build}

apt_packages=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libgtest-dev libgmock-dev prometheus-cpp-dev nlohmann-json3-dev
  python3-grpcio python3-protobuf prometheus nodejs npm openssl
)
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
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=(); [[ $(id -u) == 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages, each folder from its committed lock file: tests/oracle holds
# llama.cpp (prebuilt CPU libraries inside node-llama-cpp), the test oracle and
# benchmark baseline; clients/typescript the TypeScript client's dependencies.
# --ignore-scripts so nothing is ever compiled or downloaded by an install script.
for dir in "$root/tests/oracle" "$root/clients/typescript"; do
  [[ -f $dir/package-lock.json ]] || continue
  stamp=$dir/node_modules/.phi3-installed
  if [[ ! -f $stamp || $dir/package-lock.json -nt $stamp ]]; then
    echo "setup: installing npm packages in ${dir#$root/}"
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    touch "$stamp"
  fi
done

if [[ ! -f $build_dir/build.ninja ]]; then
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$build_dir" -j "$(nproc)"
