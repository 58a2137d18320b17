#!/usr/bin/env bash
# Benchmark 1: the synthetic world, observable and hidden. Capstan and the baselines play
# each in Rust, which writes the worlds' event streams; Vowpal Wabbit plays the same
# streams; report.py writes each world's tables into docs/benchmarks.md. About 10 minutes
# on 2 cores.
source "$(dirname "$0")/env.sh"
for world in observable hidden; do
  out="$RESULTS/synthetic/$world"
  $BENCH synthetic --world "$world" --out "$out" "$@"
  $PY bench/placement/vw_synthetic.py "$out" "$out/vw.json" --jobs "$(nproc)"
  $PY bench/placement/report.py synthetic "$out"
done
