#!/usr/bin/env bash
# Installs what is missing and builds (scripts/setup.sh), then starts
# phi3-server on 127.0.0.1. Without --model it first generates a small
# RANDOM-WEIGHTS demo model (its output is gibberish; it only shows the API).
# Without --api-keys the server runs with --no-auth (local use only).
# Other arguments go to phi3-server as given (see `phi3-server --help`).
#
#   scripts/run.sh                                # demo model, 127.0.0.1:50051, metrics :9400
#   scripts/run.sh --model /models/phi3-mini-q4.gguf --threads 8
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${PHI3_BUILD_DIR:-$root/build}

"$root/scripts/setup.sh"

args=("$@")
has_flag() {
  local name=$1 a
  for a in "${args[@]}"; do
    [[ $a == "--$name" || $a == "--$name="* || $a == "--${name//-/_}" || $a == "--${name//-/_}="* ]] && return 0
  done
  return 1
}

if ! has_flag model; then
  source "$root/scripts/demo_model.sh"
  demo=$(demo_model "$root" "$build_dir")
  args+=("--model=$demo")
fi
if ! has_flag api-keys && ! has_flag no-auth; then
  echo "run.sh: no --api-keys given: starting with --no-auth (no authentication, local use only)" >&2
  args+=("--no-auth")
fi
has_flag listen || args+=("--listen=127.0.0.1:50051")
has_flag metrics-listen || args+=("--metrics-listen=127.0.0.1:9400")

echo "run.sh: try it: $build_dir/clients/cpp/phi3-client --addr 127.0.0.1:50051 generate --prompt 'Hello' --max-tokens 16 --stats" >&2
exec "$build_dir/service/phi3-server" "${args[@]}"
