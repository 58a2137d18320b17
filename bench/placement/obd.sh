#!/usr/bin/env bash
# Benchmark 2: the Open Bandit Dataset sample shipped in the PyPI package obp (0.4.1).
# Downloads the wheel without its dependencies, unpacks the CSV files, learns the random
# log online, and writes the table into docs/benchmarks.md. Seconds.
source "$(dirname "$0")/env.sh"
if [ ! -f "$RESULTS/obp/obp/dataset/obd/random/men/men.csv" ]; then
  rm -rf "$RESULTS/obp" && mkdir -p "$RESULTS/obp"
  "$VENV/bin/pip" download --quiet --no-deps obp==0.4.1 -d "$RESULTS/obp"
  $PY -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2], [n for n in zipfile.ZipFile(sys.argv[1]).namelist() if n.startswith("obp/dataset/obd/") and n.endswith(".csv")])' \
    "$RESULTS"/obp/obp-0.4.1-py3-none-any.whl "$RESULTS/obp"
fi
$BENCH obd --dataset "$RESULTS/obp/obp/dataset/obd" --out "$RESULTS/obd.json"
$PY bench/placement/report.py obd "$RESULTS"
