#!/usr/bin/env bash
# Installs what is missing and builds (scripts/setup.sh), then starts
# phi3-server on 127.0.0.1. Without --model it first generates a small
# RANDOM-WEIGHTS demo model (its output is gibberish; it only shows the API).
# Without --api-keys the server runs with --no-auth (local use only).
# Other arguments go to phi3-server as given (see `phi3-server --help`).
#
#   scripts/run.sh                                # demo model, 127.0.0.1:50051, metrics :9400
#   scripts/run.sh --http-listen 127.0.0.1:8080   # also the OpenAI-compatible HTTP API
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

# Passes the server's log through and, once the model has loaded and the
# server is ready, says how to reach it (real addresses, key or not). Ignores
# Ctrl-C so the server's last lines (draining, stopped) still show.
hint_after_ready() {
  trap '' INT TERM
  local line ready='ready grpc=([^ ]+) metrics=([^ ]+) http=([^ ]+) .* auth=(on|off) tls=(on|off)'
  while IFS= read -r line; do
    printf '%s\n' "$line"
    [[ $line =~ $ready ]] || continue
    local grpc=${BASH_REMATCH[1]} metrics=${BASH_REMATCH[2]} http=${BASH_REMATCH[3]}
    local key_flag="" key_header="" tls_flag="" scheme=http
    if [[ ${BASH_REMATCH[4]} == on ]]; then
      key_flag=" --api-key YOUR_KEY"
      key_header=" -H 'Authorization: Bearer YOUR_KEY'"
    fi
    [[ ${BASH_REMATCH[5]} == on ]] && { tls_flag=" --tls --ca-cert CA.pem"; scheme=https; }
    echo "run.sh: ready. Try it:"
    echo "  $build_dir/clients/cpp/phi3-client --addr $grpc$key_flag$tls_flag generate --prompt 'Hello' --max-tokens 16 --stats"
    if [[ $http != off ]]; then
      echo "  curl -s $scheme://$http/v1/chat/completions$key_header -d '{\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}], \"max_tokens\": 16}'"
    fi
    [[ $metrics != off ]] && echo "  curl -s http://$metrics/metrics | grep phi3_"
  done
}
exec "$build_dir/service/phi3-server" "${args[@]}" 2> >(hint_after_ready >&2)
