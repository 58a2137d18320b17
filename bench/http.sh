#!/usr/bin/env bash
# OFREP over HTTP on loopback, measured with wrk (Debian package `wrk`).
#
#   bench/http.sh            # release build, then every measurement below
#
# 1. Single-flag evaluation: 2 wrk threads, 50 keep-alive connections, 20 s, against a
#    flag with one targeting rule. Reports requests/s and latency percentiles.
# 2. Bulk evaluation of an environment with 100 flags: 1 thread, 1 connection, 10 s,
#    so latency is per request, not queueing. Reports p50/p99.
# 3. Memory: RSS of the server with 10,000 flags loaded in one environment.
#
# The server runs with rate limiting off and logs at warn, on a fresh SQLite file.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
DURATION=${DURATION:-20}
cargo build --release -p capstan >&2
work=$(mktemp -d)
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
ADMIN=cps_benchmark_admin_0123456789abcdefghijk
CAPSTAN_BOOTSTRAP_TOKEN=$ADMIN CAPSTAN_LOG=warn CAPSTAN_RATE_LIMIT=0 \
  target/release/capstan serve --listen 127.0.0.1:0 --database "$work/capstan.db" > "$work/out" &
server=$!
until grep -q '^Listening on ' "$work/out" 2>/dev/null; do sleep 0.1; done
url=$(sed -n 's/^Listening on //p' "$work/out")
export CAPSTAN_SERVER=$url CAPSTAN_TOKEN=$ADMIN
capstan=target/release/capstan

python3 - "$work/flags100.json" 100 <<'PY'
import json, sys
path, count = sys.argv[1], int(sys.argv[2])
flags = {}
for i in range(count):
    flags[f"flag-{i:05d}"] = {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": {"if": [{"in": [{"var": "country"}, ["de", "fr", f"x{i}"]]}, "on", None]},
    }
json.dump({"flags": flags}, open(path, "w"))
PY
$capstan flags import "$work/flags100.json" --env production >&2
export SDK_KEY=$($capstan tokens create --role sdk --env production --name bench)

echo "== for scale: a route that does nothing (/healthz): wrk -t2 -c50 -d${DURATION}s --latency"
wrk -t2 -c50 -d"${DURATION}s" --latency "$url/healthz"

echo "== single-flag OFREP evaluation: wrk -t2 -c50 -d${DURATION}s --latency"
wrk -t2 -c50 -d"${DURATION}s" --latency -s bench/ofrep-single.lua "$url/ofrep/v1/evaluate/flags/flag-00042"

echo "== bulk OFREP evaluation of 100 flags: wrk -t1 -c1 -d10s --latency"
wrk -t1 -c1 -d10s --latency -s bench/ofrep-bulk.lua "$url/ofrep/v1/evaluate/flags"

python3 - "$work/flags10k.json" 10000 <<'PY'
import json, sys
path, count = sys.argv[1], int(sys.argv[2])
flags = {}
for i in range(count):
    flags[f"flag-{i:05d}"] = {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": {"if": [{"in": [{"var": "country"}, ["de", "fr", f"x{i}"]]}, "on", None]},
    }
json.dump({"flags": flags}, open(path, "w"))
PY
echo "== memory"
grep VmRSS /proc/$server/status | sed 's/^/with 100 flags:    /'
/usr/bin/time -f "import of 10,000 flags took %e s" $capstan flags import "$work/flags10k.json" --env production >&2
curl -s -o /dev/null -X POST -H "Authorization: Bearer $SDK_KEY" -d '{"context":{"targetingKey":"u"}}' "$url/ofrep/v1/evaluate/flags/flag-09999"
grep VmRSS /proc/$server/status | sed 's/^/with 10,000 flags, right after importing them: /'
echo "== flipping one flag among 10,000 (through the CLI, so including its start-up)"
for i in 1 2 3; do
  /usr/bin/time -f "flip took %e s" $capstan flags disable flag-0000$i --env production > /dev/null
done
# A restarted server holds only what it loads: the steady state.
kill $server; wait $server || true
: > "$work/out"
CAPSTAN_LOG=warn CAPSTAN_RATE_LIMIT=0 \
  target/release/capstan serve --listen 127.0.0.1:0 --database "$work/capstan.db" > "$work/out" &
server=$!
until grep -q '^Listening on ' "$work/out" 2>/dev/null; do sleep 0.1; done
url=$(sed -n 's/^Listening on //p' "$work/out")
curl -s -o /dev/null -X POST -H "Authorization: Bearer $SDK_KEY" -d '{"context":{"targetingKey":"u"}}' "$url/ofrep/v1/evaluate/flags/flag-09999"
grep VmRSS /proc/$server/status | sed 's/^/with 10,000 flags, after a restart: /'
