#!/usr/bin/env bash
# Runs a fleet on loopback: N phi3-server replicas behind the HAProxy router
# (deploy/router/haproxy.cfg), which sends calls with the same
# `x-phi3-route-key` metadata to the same replica (its prefix cache) and the
# rest round-robin. Without --model it serves the generated RANDOM-WEIGHTS demo
# model, like scripts/run.sh; without --api-keys the replicas run --no-auth.
#
#   scripts/fleet.sh [--replicas N] [--model FILE] [--port P] [--metrics-port M]
#                    [--threads T] [--state-dir DIR] [--no-setup] [-- SERVER FLAGS...]
#
#   --replicas N      replicas (default 3), each on 127.0.0.1 with ports picked free
#   --port P          the router's gRPC port (default 50050)
#   --metrics-port M  the router's Prometheus /metrics port (default 8404)
#   --threads T       compute threads per replica (default: cores / N, at least 1)
#   --state-dir DIR   logs, the router's replica list, and Prometheus file_sd
#                     targets.json (replicas) and router-targets.json for
#                     deploy/prometheus/prometheus-local.yml (default: a
#                     temporary folder, removed on exit)
#   --no-setup        use the binaries already built (skip scripts/setup.sh)
#   -- FLAGS...       passed to every phi3-server (e.g. -- --api-keys keys.txt);
#                     the replicas share the usage ledger phi3-usage.db in the
#                     current folder unless --usage-ledger names another
#
# Prints one line per replica and one for the router, then `ready` once every
# replica serves and the router has checked them all. SIGTERM or Ctrl-C stops
# everything: replicas drain their streams first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${PHI3_BUILD_DIR:-$root/build}

replicas=3 model="" port=50050 metrics_port=8404 threads="" state_dir="" setup=1
server_args=()
usage() { sed -n '8,9p' "$0" | sed 's/^# *//' >&2; exit 2; }
while (($#)); do
  case $1 in
    --replicas) replicas=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --metrics-port) metrics_port=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --state-dir) state_dir=$2; shift 2 ;;
    --no-setup) setup=0; shift ;;
    --replicas=* | --model=* | --port=* | --metrics-port=* | --threads=* | --state-dir=*)
      name=${1%%=*}; set -- "$name" "${1#*=}" "${@:2}" ;;
    --) shift; server_args=("$@"); break ;;
    *) echo "fleet.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ $replicas =~ ^[1-9][0-9]*$ ]] || { echo "fleet.sh: --replicas needs a count >= 1, got $replicas" >&2; exit 2; }
[[ -n $threads ]] || threads=$(( $(nproc) / replicas > 0 ? $(nproc) / replicas : 1 ))

((setup)) && "$root/scripts/setup.sh"
if ! command -v haproxy >/dev/null; then
  echo "fleet.sh: installing haproxy (the router)" >&2
  sudo_cmd=(); [[ $(id -u) == 0 ]] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends haproxy
fi
if [[ -z $model ]]; then
  source "$root/scripts/demo_model.sh"
  model=$(demo_model "$root" "$build_dir")
fi
[[ -r $model ]] || { echo "fleet.sh: cannot read model $model" >&2; exit 2; }
# What the replicas get unless the server flags say otherwise: --no-auth, and
# one usage ledger for the fleet (the server's default SQLite file in the
# current folder, which several processes can write) with a spill file per
# replica (a spill file belongs to one server).
spill_base_of() {  # a --usage-ledger value -> its replicas' spill file prefix
  case $1 in
    sqlite:*) echo "${1#sqlite:}" ;;
    none) echo "" ;;
    *) echo phi3-usage-ledger ;;
  esac
}
auth=(--no-auth) ledger=(--usage-ledger=sqlite:phi3-usage.db) spill_base=phi3-usage.db
for ((i = 0; i < ${#server_args[@]}; i++)); do
  a=${server_args[i]//_/-}
  case $a in
    --api-keys* | --no-auth) auth=() ;;
    --usage-ledger-spill*) spill_base="" ;;
    --usage-ledger=*) ledger=() spill_base=$(spill_base_of "${a#--usage-ledger=}") ;;
    --usage-ledger) ledger=() spill_base=$(spill_base_of "${server_args[i + 1]:-}") ;;
  esac
done
((${#auth[@]})) && echo "fleet.sh: no --api-keys given: replicas run with --no-auth (local use only)" >&2

if [[ -z $state_dir ]]; then
  state_dir=$(mktemp -d "${TMPDIR:-/tmp}/phi3-fleet.XXXXXX")
  keep_state=0
else
  mkdir -p "$state_dir"
  keep_state=1
fi

pids=() router_pid=""
stop_all() {
  trap - TERM INT EXIT
  echo "fleet.sh: stopping" >&2
  for pid in "${pids[@]}" $router_pid; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}" $router_pid; do wait "$pid" 2>/dev/null || true; done
  ((keep_state)) || rm -rf "$state_dir"
  exit "${1:-0}"
}
trap 'stop_all 0' TERM INT
trap 'stop_all 1' EXIT

for ((i = 1; i <= replicas; i++)); do
  spill=()
  [[ -n $spill_base ]] && spill=(--usage-ledger-spill="$spill_base.replica$i.spill")
  "$build_dir/service/phi3-server" --model="$model" --listen=127.0.0.1:0 \
    --metrics-listen=127.0.0.1:0 --threads="$threads" "${auth[@]}" "${ledger[@]}" "${spill[@]}" \
    "${server_args[@]}" 2> "$state_dir/replica$i.log" &
  pids+=($!)
done

# Each replica logs "ready grpc=HOST:PORT metrics=HOST:PORT" once it serves
# (and answers grpc.health.v1 with SERVING).
servers=$state_dir/servers.cfg targets=$state_dir/targets.json
echo "backend phi3 from phi3" > "$servers"
echo "[" > "$targets"
for ((i = 1; i <= replicas; i++)); do
  log=$state_dir/replica$i.log
  until grep -q "ready grpc=" "$log"; do
    if ! kill -0 "${pids[i - 1]}" 2>/dev/null; then
      echo "fleet.sh: replica$i exited before serving:" >&2
      cat "$log" >&2
      stop_all 1
    fi
    sleep 0.1
  done
  read -r grpc metrics < <(sed -n 's/.*ready grpc=\([^ ]*\) metrics=\([^ ]*\).*/\1 \2/p' "$log")
  echo "  server replica$i $grpc" >> "$servers"
  ((i > 1)) && echo "," >> "$targets"
  printf '  {"targets": ["%s"], "labels": {"namespace": "local", "pod": "replica%d"}}\n' \
    "$metrics" "$i" >> "$targets"
  echo "replica$i pid=${pids[i - 1]} grpc=$grpc metrics=$metrics log=$log"
done
echo "]" >> "$targets"

PHI3_ROUTER_LISTEN=127.0.0.1:$port PHI3_ROUTER_METRICS_LISTEN=127.0.0.1:$metrics_port \
  haproxy -db -f "$root/deploy/router/haproxy.cfg" -f "$servers" > "$state_dir/router.log" 2>&1 &
router_pid=$!
printf '[{"targets": ["127.0.0.1:%s"], "labels": {"namespace": "local", "pod": "router"}}]\n' \
  "$metrics_port" > "$state_dir/router-targets.json"
echo "router pid=$router_pid grpc=127.0.0.1:$port metrics=127.0.0.1:$metrics_port log=$state_dir/router.log"

# Ready once the router's own health checks have every replica UP.
router_metrics() {
  exec 3<> "/dev/tcp/127.0.0.1/$metrics_port" || return 0
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
  cat <&3
  exec 3<&-
}
up_count() {
  router_metrics 2>/dev/null | grep -c '^haproxy_server_status{proxy="phi3",server="replica[0-9]*",state="UP"} 1' || true
}
for ((t = 0; t < 300; t++)); do
  kill -0 "$router_pid" 2>/dev/null || { echo "fleet.sh: the router exited:" >&2; cat "$state_dir/router.log" >&2; stop_all 1; }
  (($(up_count) == replicas)) && break
  sleep 0.1
done
(($(up_count) == replicas)) || { echo "fleet.sh: the router does not see all replicas up" >&2; stop_all 1; }
echo "prometheus targets: $targets $state_dir/router-targets.json (deploy/prometheus/prometheus-local.yml)"
echo "ready"

# Replicas may come and go (that is what the router is for); the router may not.
while kill -0 "$router_pid" 2>/dev/null; do
  sleep 1 &
  wait $! || true
done
echo "fleet.sh: the router exited:" >&2
tail -n 20 "$state_dir/router.log" >&2
stop_all 1
