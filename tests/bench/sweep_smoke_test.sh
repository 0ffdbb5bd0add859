#!/usr/bin/env bash
# ctest smoke test of phi3-bench --types: generates two tiny models into an
# empty directory, runs both sides on each and checks the one sweep table
# (host header, a row per type x figure with both sides' figures and a
# ratio). Measures nothing worth reading.
#   sweep_smoke_test.sh BENCH NODE
set -euo pipefail
bench="$1"; node="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$bench" --types q8_0,q4_0 --model_dir "$tmp/models" --preset tiny --layers 1 --threads 1 \
  --reps 1 --node "$node" --figures tg128,parallel:4 --parallel_tokens 8 --bandwidth_mib 64 \
  >"$tmp/out.txt" 2>"$tmp/err.txt" || { cat "$tmp/err.txt" "$tmp/out.txt"; exit 1; }

fail=0
for f in tiny-L1-q8_0.gguf tiny-L1-q4_0.gguf; do
  [[ -f "$tmp/models/$f" ]] || { echo "FAIL: $f not generated"; fail=1; }
done
grep -q '^- host CPU: .* (\(AVX\|no AVX2\|unknown\)' "$tmp/out.txt" || { echo "FAIL: no host line"; fail=1; }
grep -q '^- our kernels: [a-z0-9]*; llama.cpp CPU build: [a-z0-9_]' "$tmp/out.txt" ||
  { echo "FAIL: no kernels / llama.cpp build line"; fail=1; }
for type in q8_0 q4_0; do
  for figure in tg128 parallel:4; do
    # | type | figure | ours | llama.cpp | ratio | ... with numbers on both sides.
    if ! grep -Eq "^\| $type \| $figure \| [0-9.]+ \| [0-9.]+ \| [0-9.]+x \|" "$tmp/out.txt"; then
      echo "FAIL: no complete row for $type $figure"
      fail=1
    fi
  done
done
if grep -q 'ERROR' "$tmp/out.txt"; then echo "FAIL: a figure failed"; fail=1; fi
if [[ $fail -ne 0 ]]; then cat "$tmp/err.txt" "$tmp/out.txt"; exit 1; fi
echo "phi3-bench --types smoke test passed"
