# Sourced by the placement benchmarks: the repository root, a virtualenv with the
# pinned Python packages under target/, and a release build of the benchmark binary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
VENV=target/placement-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import vowpalwabbit' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet -r bench/placement/requirements.txt
fi
PY=$VENV/bin/python
RESULTS=target/placement
mkdir -p "$RESULTS"
cargo build --release --quiet -p capstan-placement-bench
BENCH=target/release/capstan-placement-bench
