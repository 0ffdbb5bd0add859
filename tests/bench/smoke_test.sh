#!/usr/bin/env bash
# ctest smoke test: phi3-bench (ours and llama.cpp) runs end to end on a tiny
# generated model and prints well-formed figure lines, so the benchmark
# tooling cannot rot. Measures nothing worth reading.
#   smoke_test.sh MKMODEL BENCH NODE
set -euo pipefail
mkmodel="$1"; bench="$2"; node="$3"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$mkmodel" --preset tiny --type q4_0 --seed 3 --out "$tmp/tiny.gguf" >/dev/null
"$bench" --model "$tmp/tiny.gguf" --threads 1 --reps 1 --node "$node" \
  --figures tg128,pp512,parallel:4,mem:f16,tg128_vs_read --parallel_tokens 8 --read_pairs 2 \
  --bandwidth_mib 64 \
  >"$tmp/out.txt" 2>"$tmp/err.txt" || { cat "$tmp/err.txt" "$tmp/out.txt"; exit 1; }

fail=0
for figure in tg128 pp512 parallel:4 mem:f16 roofline; do
  line="$(grep "^{\"figure\":\"$figure\"" "$tmp/out.txt" || true)"
  # Both sides measured: a number (not null) for ours, llama_cpp and ratio.
  if ! [[ "$line" =~ \"ours\":[0-9] && "$line" =~ \"llama_cpp\":[0-9] && "$line" =~ \"ratio\":[0-9] ]]; then
    echo "FAIL: figure $figure missing or incomplete: $line"
    fail=1
  fi
  if [[ "$line" == *'"error"'* ]]; then echo "FAIL: $line"; fail=1; fi
done
# Ours only: a number for ours, null for llama.cpp, the pattern of its passes.
line="$(grep '^{"figure":"tg128_vs_read"' "$tmp/out.txt" || true)"
if ! [[ "$line" =~ \"ours\":[0-9] && "$line" == *'"llama_cpp":null'* &&
        "$line" =~ \"ours_read_bytes_s\":[0-9] && "$line" =~ \"read_pattern\":\"[a-z] ]]; then
  echo "FAIL: figure tg128_vs_read missing or incomplete: $line"
  fail=1
fi
grep -q '^tg128_vs_read (ours only' "$tmp/out.txt" || { echo "FAIL: no tg128_vs_read line"; fail=1; }
grep -q '"llama_cpp_cpu_variant":"[a-z0-9_]' "$tmp/out.txt" || { echo "FAIL: no CPU variant"; fail=1; }
if [[ $fail -ne 0 ]]; then cat "$tmp/err.txt" "$tmp/out.txt"; exit 1; fi
echo "phi3-bench smoke test passed"
