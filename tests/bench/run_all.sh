#!/usr/bin/env bash
# Generates the phi3-mini benchmark models (if missing) and runs phi3-bench on
# each, ours vs llama.cpp in the same run. Not part of ctest.
#
#   tests/bench/run_all.sh [--build DIR] [--models DIR] [--types "q4_k_m q4_0 q8_0 f16"]
#                          [--threads N] [--reps R] [--out DIR] [-- extra phi3-bench flags]
#
# Results: DIR/<type>.txt (table + JSON lines) and DIR/results.jsonl (all
# JSON lines). Models are GBs (f16 is ~7.3 GiB): they live outside the repo
# and --delete-after removes each one once measured.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="$repo/build"
models="/work/models"
types="q4_k_m q4_0 q8_0 f16"
threads=2
reps=5
out=""
delete_after=0
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --types) types="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --delete-after) delete_after=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "run_all.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
out="${out:-$build/bench-results}"

mkmodel="$build/engine/tools/mkmodel/phi3-mkmodel"
bench="$build/engine/tools/bench/phi3-bench"
for exe in "$mkmodel" "$bench"; do
  if [[ ! -x "$exe" ]]; then
    echo "run_all.sh: $exe not built (ninja -C $build phi3-mkmodel phi3-bench)" >&2
    exit 2
  fi
done
if [[ ! -d "$repo/tests/oracle/node_modules/node-llama-cpp" ]]; then
  echo "run_all.sh: node-llama-cpp missing; run scripts/setup.sh (npm ci --ignore-scripts)" >&2
  exit 2
fi
mkdir -p "$models" "$out"

for type in $types; do
  model="$models/phi3-mini-$type.gguf"
  if [[ ! -f "$model" ]]; then
    echo "== generating $model"
    "$mkmodel" --preset phi3-mini --type "$type" --seed 1 --out "$model.tmp"
    mv "$model.tmp" "$model"
  fi
  echo "== phi3-bench $type (threads $threads, reps $reps), $(date -u)"
  "$bench" --model "$model" --threads "$threads" --reps "$reps" "${extra[@]}" \
    | tee "$out/$type.txt"
  grep '^{' "$out/$type.txt" >> "$out/results.jsonl"
  if [[ $delete_after -eq 1 ]]; then rm -f "$model"; fi
done
echo "== results in $out"
