#!/usr/bin/env bash
# ctest smoke test: phi3-serve-bench starts phi3-server, streams through gRPC
# and runs llama.cpp on a tiny generated model, printing well-formed figure
# lines (both sides measured, no preemption, no error). Measures nothing
# worth reading.
#   serve_smoke_test.sh MKMODEL SERVE_BENCH NODE
set -euo pipefail
mkmodel="$1"; bench="$2"; node="$3"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$mkmodel" --preset tiny --type q4_0 --seed 3 --out "$tmp/tiny.gguf" >/dev/null
"$bench" --model "$tmp/tiny.gguf" --threads 1 --reps 1 --node "$node" \
  --figures parallel:1,parallel:4,ttft --parallel_tokens 32 \
  >"$tmp/out.txt" 2>"$tmp/err.txt" || { cat "$tmp/err.txt" "$tmp/out.txt"; exit 1; }

fail=0
for figure in parallel:1 parallel:4 ttft; do
  line="$(grep "^{\"figure\":\"$figure\"" "$tmp/out.txt" || true)"
  if ! [[ "$line" =~ \"ours\":[0-9] && "$line" =~ \"llama_cpp\":[0-9] && "$line" =~ \"ratio\":[0-9] ]]; then
    echo "FAIL: figure $figure missing or incomplete: $line"
    fail=1
  fi
  [[ "$line" == *'"ours_runner":"grpc"'* ]] || { echo "FAIL: not through gRPC: $line"; fail=1; }
  if [[ "$line" == *'"error"'* ]]; then echo "FAIL: $line"; fail=1; fi
done
# The server was sized for the streams: the engine never preempted.
line="$(grep '^{"figure":"parallel:4"' "$tmp/out.txt" || true)"
[[ "$line" == *'"ours_preemptions":0,'* ]] || { echo "FAIL: preemptions: $line"; fail=1; }
[[ "$line" =~ \"ours_itl_p99_ms\":[0-9] ]] || { echo "FAIL: no ITL: $line"; fail=1; }
grep -q '"llama_cpp_cpu_variant":"[a-z0-9_]' "$tmp/out.txt" || { echo "FAIL: no CPU variant"; fail=1; }
if [[ $fail -ne 0 ]]; then cat "$tmp/err.txt" "$tmp/out.txt"; exit 1; fi
echo "phi3-serve-bench smoke test passed"
