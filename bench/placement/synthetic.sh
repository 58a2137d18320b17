#!/usr/bin/env bash
# Benchmark 1: the synthetic world. Capstan and the baselines play it in Rust, which
# writes each world's event stream; Vowpal Wabbit plays the same streams; report.py
# writes the table into docs/benchmarks.md. About 2 to 3 minutes on 2 cores.
source "$(dirname "$0")/env.sh"
$BENCH synthetic --out "$RESULTS/synthetic" "$@"
$PY bench/placement/vw_synthetic.py "$RESULTS/synthetic" "$RESULTS/synthetic/vw.json" --jobs "$(nproc)"
$PY bench/placement/report.py synthetic "$RESULTS/synthetic"
