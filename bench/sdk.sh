#!/usr/bin/env bash
# SDK streaming, change propagation and events ingest, measured on loopback with
# capstan-loadtest (crates/capstan-loadtest) and criterion. Figures: docs/benchmarks.md.
#
#   bench/sdk.sh                        # every measurement below
#   bench/sdk.sh propagation events     # only some of: propagation replicas idle events evaluation
#
# propagation  1,000 SDK streams on one server (fresh SQLite file), 200 flips: the time
#              from just before each flip's API call until every stream has parsed the
#              snapshot with the new revision.
# replicas     the same with two servers on one PostgreSQL database, half the streams on
#              each, flips through the first.
# idle         10,000 idle streams on a freshly started server: its RSS before and after
#              (/proc/PID/status), then 10 flips timed to all of them.
# events       POST /api/v1/events, batches of 500 from 8 connections for 10 s: on SQLite,
#              then on PostgreSQL.
# evaluation   cargo bench -p capstan-sdk --bench local_evaluation: Client::bool_value
#              against the engine's evaluate, exposures off and on.
#
# Servers run with rate limiting off and log at warn. PostgreSQL is reached as psql
# reaches it (PGHOST, PGPORT, PGUSER; defaults 127.0.0.1, 5432, postgres); a throwaway
# database is created and dropped. Without PostgreSQL, its measurements are skipped.
# Sizes: STREAMS, FLIPS, IDLE_STREAMS, EVENT_SECONDS, EVENT_CONNECTIONS, EVENT_BATCH.
set -euo pipefail
cd "$(dirname "$0")/.."

STREAMS=${STREAMS:-1000}
FLIPS=${FLIPS:-200}
IDLE_STREAMS=${IDLE_STREAMS:-10000}
EVENT_SECONDS=${EVENT_SECONDS:-10}
EVENT_CONNECTIONS=${EVENT_CONNECTIONS:-8}
EVENT_BATCH=${EVENT_BATCH:-500}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
ADMIN=cps_benchmark_admin_0123456789abcdefghijk
FLAG=loadtest

if [ $# -eq 0 ]; then
  set -- propagation replicas idle events evaluation
fi
selected=" $* "
selected() { [[ "$selected" == *" $1 "* ]]; }

# Every stream is a file descriptor, in the load generator and in the server (which
# inherits this limit).
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ]; then hard=65536; fi
ulimit -n "$hard"
if [ "$hard" -lt $((IDLE_STREAMS + 1024)) ] && selected idle; then
  echo "the open-file hard limit ($hard) is too low for $IDLE_STREAMS streams" >&2
  exit 1
fi

cargo build --release -p capstan -p capstan-loadtest >&2
capstan=target/release/capstan
loadtest=target/release/capstan-loadtest

work=$(mktemp -d)
pids=()
database=""
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$database" ]; then
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >&2 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# start_server NAME DATABASE: starts `capstan serve`; sets url_NAME and pid_NAME.
start_server() {
  local name=$1 database_url=$2
  CAPSTAN_BOOTSTRAP_TOKEN=$ADMIN CAPSTAN_LOG=warn CAPSTAN_RATE_LIMIT=0 \
    $capstan serve --listen 127.0.0.1:0 --database "$database_url" > "$work/$name.out" 2> "$work/$name.err" &
  local pid=$!
  pids+=("$pid")
  until grep -q '^Listening on ' "$work/$name.out" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.err" >&2; exit 1; }
    sleep 0.1
  done
  printf -v "url_$name" '%s' "$(sed -n 's/^Listening on //p' "$work/$name.out")"
  printf -v "pid_$name" '%s' "$pid"
}

stop_server() {
  local pid_var="pid_$1"
  kill "${!pid_var}"
  wait "${!pid_var}" 2>/dev/null || true
}

# prepare URL: creates the boolean flag (off) and prints a new sdk key for production.
prepare() {
  local url=$1
  curl -sf -X POST -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
    -d "{\"key\":\"$FLAG\"}" "$url/api/v1/projects/default/flags" > /dev/null
  curl -sf -X POST -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
    -d '{"name":"loadtest","role":"sdk","environment":"production"}' "$url/api/v1/tokens" |
    sed -n 's/.*"token":"\([^"]*\)".*/\1/p'
}

# The machine is shared: say what else was running when a figure was taken.
load_note() {
  local builds
  builds=$(pgrep -c rustc || true)
  echo "  (load average $(cut -d' ' -f1-3 /proc/loadavg); rustc processes running: $builds)"
}

postgres_ready() {
  command -v psql > /dev/null && psql -X -q -d postgres -c 'SELECT 1' > /dev/null 2>&1
}

export CAPSTAN_TOKEN=$ADMIN CAPSTAN_LOADTEST_FLAG=$FLAG

if selected propagation || selected events; then
  start_server single "$work/capstan.db"
  key=$(prepare "$url_single")
  if selected propagation; then
    echo "== propagation, one server (SQLite)"
    load_note
    $loadtest propagation --server "$url_single" --sdk-key "$key" --streams "$STREAMS" --flips "$FLIPS"
  fi
  if selected events; then
    echo "== events ingest (SQLite)"
    load_note
    $loadtest events --server "$url_single" --sdk-key "$key" --batch "$EVENT_BATCH" \
      --seconds "$EVENT_SECONDS" --connections "$EVENT_CONNECTIONS"
  fi
  stop_server single
fi

if selected idle; then
  echo "== idle streams (fresh server, SQLite)"
  start_server idle "$work/idle.db"
  key=$(prepare "$url_idle")
  load_note
  $loadtest idle --server "$url_idle" --sdk-key "$key" --connections "$IDLE_STREAMS" \
    --server-pid "$pid_idle" --hold-seconds 5 --flips 10
  stop_server idle
fi

if selected replicas || selected events; then
  if postgres_ready; then
    database=capstan_bench_$$
    psql -X -q -d postgres -c "CREATE DATABASE $database"
    postgres_url="postgres://$PGUSER@$PGHOST:$PGPORT/$database"
    # The first replica bootstraps the empty database; the second starts after it.
    start_server first "$postgres_url"
    start_server second "$postgres_url"
    key=$(prepare "$url_first")
    if selected replicas; then
      echo "== propagation, two replicas on one PostgreSQL database"
      load_note
      $loadtest propagation --server "$url_first" --second-server "$url_second" --sdk-key "$key" \
        --streams "$STREAMS" --flips "$FLIPS"
    fi
    if selected events; then
      echo "== events ingest (PostgreSQL)"
      load_note
      $loadtest events --server "$url_first" --sdk-key "$key" --batch "$EVENT_BATCH" \
        --seconds "$EVENT_SECONDS" --connections "$EVENT_CONNECTIONS"
    fi
    stop_server first
    stop_server second
  else
    echo "== PostgreSQL not reachable (psql -d postgres failed): replicas and PostgreSQL events skipped"
  fi
fi

if selected evaluation; then
  echo "== SDK local evaluation (criterion)"
  load_note
  cargo bench -p capstan-sdk --bench local_evaluation 2>&1 |
    grep -E '^sdk local evaluation/|time:|exposures dropped'
fi
