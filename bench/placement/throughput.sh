#!/usr/bin/env bash
# Benchmark 3: throughput. The criterion bench of rank; learn-and-predict examples per
# second of Capstan and of Vowpal Wabbit on the same examples; the HTTP rank endpoint's
# latency on loopback. About 3 minutes on 2 cores.
source "$(dirname "$0")/env.sh"
cargo bench --quiet -p capstan-bandit --bench rank -- rank >&2
$BENCH throughput --out "$RESULTS/throughput"
$PY bench/placement/vw_throughput.py "$RESULTS/throughput" "$RESULTS/throughput/vw.json"
cargo build --release --quiet -p capstan
$BENCH http --capstan target/release/capstan --out "$RESULTS/http.json"
$PY bench/placement/report.py throughput "$RESULTS"
