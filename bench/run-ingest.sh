#!/usr/bin/env bash
# Ingest benchmark for cairn: durable _bulk throughput, server memory, on-disk size,
# ack-to-searchable latency. Results go to bench/out/ (gitignored).
#
#   SIZE=1GB CLIENTS=4 bench/run-ingest.sh
#
# Environment:
#   SIZE         JSON corpus size (default 1GB; binary units)
#   CLIENTS      concurrent _bulk clients (default 4)
#   BATCH        _bulk body size (default 5MB)
#   SEED         corpus seed (default 1)
#   NGINX_SIZE   nginx corpus size, 0 to skip (default 256MB)
#   EXPLICIT     also run the JSON corpus with explicit ids (default 1)
#   SAMPLES      also load the real access-log samples from the repo (default 1)
#   SERVER_ARGS  extra arguments for `cairn serve`
#   PERF         if 1 and perf exists, record the JSON/generated-id run (perf.data in out/)
#   NO_BUILD     if 1, skip cargo build
#   CAIRN_BIN    the cairn binary to measure (default target/release/cairn)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SIZE="${SIZE:-1GB}"
CLIENTS="${CLIENTS:-4}"
BATCH="${BATCH:-5MB}"
SEED="${SEED:-1}"
NGINX_SIZE="${NGINX_SIZE:-256MB}"
EXPLICIT="${EXPLICIT:-1}"
SAMPLES="${SAMPLES:-1}"
SERVER_ARGS="${SERVER_ARGS:-}"
PERF="${PERF:-0}"
OUT="$ROOT/bench/out"
RES="$OUT/results"
CAIRN="${CAIRN_BIN:-$ROOT/target/release/cairn}"
BENCH="$ROOT/target/release/cairn-bench"

mkdir -p "$OUT"
rm -rf "$RES"
mkdir -p "$RES"

if [[ "${NO_BUILD:-0}" != 1 ]]; then
  echo "### building (release)"
  cargo build --release -p cairn -p cairn-bench
fi

SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

# Corpus files are reused when their size/seed matches (the name carries both).
corpus() { # kind size -> path
  local kind="$1" size="$2" ext
  [[ "$kind" == json ]] && ext=ndjson || ext=log
  local f="$OUT/corpus-$kind-$size-seed$SEED.$ext"
  if [[ ! -s "$f" ]]; then
    echo "### generating $kind corpus ($size) -> $f" >&2
    "$BENCH" gen --kind "$kind" --bytes "$size" --seed "$SEED" --out "$f.tmp" >&2
    mv "$f.tmp" "$f"
  fi
  echo "$f"
}

start_server() { # label [extra args...]
  local label="$1"; shift
  DATA="$OUT/data-$label"
  rm -rf "$DATA"
  PORT="$("$BENCH" free-port)"
  URL="http://127.0.0.1:$PORT"
  # shellcheck disable=SC2086
  "$CAIRN" serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" $SERVER_ARGS "$@" \
    >"$RES/$label.server.log" 2>&1 &
  SERVER_PID=$!
  "$BENCH" wait-ready --server "$URL" --timeout-s 60
  echo "### [$label] server pid $SERVER_PID on $URL, data $DATA"
}

stop_server() {
  kill "$SERVER_PID"
  local t=0
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    sleep 0.1
    t=$((t + 1))
    if ((t > 600)); then
      echo "server $SERVER_PID did not stop within 60s after SIGTERM; killing" >&2
      kill -9 "$SERVER_PID" 2>/dev/null || true
    fi
  done
  wait "$SERVER_PID" 2>/dev/null || true
  echo "### server stopped after $((t / 10)).$((t % 10))s"
  SERVER_PID=""
}

# label file raw_bytes [load args...]
run_one() {
  local label="$1" file="$2" raw="$3"; shift 3
  start_server "$label"
  local perf_pid=""
  if [[ "$PERF" == 1 && "$label" == json-genid ]] && command -v perf >/dev/null; then
    perf record -F 199 -g -p "$SERVER_PID" -o "$OUT/perf.data" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  "$BENCH" load --server "$URL" --file "$file" --index "$label" --clients "$CLIENTS" \
    --batch-bytes "$BATCH" --pid "$SERVER_PID" --seed "$SEED" \
    --json-out "$RES/$label.load.json" "$@" | tee "$RES/$label.load.txt"
  if [[ -n "$perf_pid" ]]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
  fi
  local t0=$SECONDS
  curl -sS -X POST "$URL/_flush" >/dev/null
  echo "### _flush took $((SECONDS - t0))s"
  "$BENCH" disk --data-dir "$DATA" --raw-bytes "$raw" --json-out "$RES/$label.disk.json" \
    | tee "$RES/$label.disk.txt"
  stop_server
  echo "### after stop:"
  "$BENCH" disk --data-dir "$DATA" --raw-bytes "$raw" --json-out "$RES/$label.disk-final.json" \
    | tee "$RES/$label.disk-final.txt"
  echo
}

fsize() { stat -c %s "$1"; }

JSON_FILE="$(corpus json "$SIZE")"
run_one json-genid "$JSON_FILE" "$(fsize "$JSON_FILE")"
if [[ "$EXPLICIT" == 1 ]]; then
  run_one json-explicit-id "$JSON_FILE" "$(fsize "$JSON_FILE")" --explicit-ids
fi
if [[ "$NGINX_SIZE" != 0 ]]; then
  NGINX_FILE="$(corpus nginx "$NGINX_SIZE")"
  run_one nginx-genid "$NGINX_FILE" "$(fsize "$NGINX_FILE")" --format lines
fi

if [[ "$SAMPLES" == 1 ]]; then
  # Real access logs shipped with the repo (old timestamps: allow them).
  SAMPLE_FILE="$OUT/samples-access.log"
  : >"$SAMPLE_FILE"
  for f in crates/cairn-formats/tests/data/web/elastic-examples_apache_logs_2k.log \
    crates/cairn-formats/tests/data/web/apache-access_*.log \
    crates/cairn-formats/tests/data/web/nginx-access_*.log; do
    [[ -f "$f" ]] && cat "$f" >>"$SAMPLE_FILE"
  done
  if [[ ! -s "$SAMPLE_FILE" && -d tests/data/web-access ]]; then
    cat tests/data/web-access/*.log >>"$SAMPLE_FILE" 2>/dev/null || true
  fi
  if [[ -s "$SAMPLE_FILE" ]]; then
    SERVER_ARGS="$SERVER_ARGS --max-past 20000d" \
      run_one samples-access "$SAMPLE_FILE" "$(fsize "$SAMPLE_FILE")" --format lines --markers 0
  fi
fi

echo "### summary ($(date -u +%FT%TZ), $(nproc) cores, SIZE=$SIZE CLIENTS=$CLIENTS BATCH=$BATCH)"
"$BENCH" summary "$RES" | tee "$RES/summary.md"
