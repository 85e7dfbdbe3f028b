#!/usr/bin/env bash
# Search benchmark: LINES generated JSON log lines (default 10M) loaded into a release
# server, then p50/p99 per query (bench/search_bench.py) and ripgrep over the same text.
#   LINES=10000000 bench/run-search.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LINES="${LINES:-10000000}"
CLIENTS="${CLIENTS:-2}"
OUT="$ROOT/bench/out"
mkdir -p "$OUT"
command -v rg >/dev/null || { apt-get update -qq && apt-get install -y -qq ripgrep >/dev/null; }
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release -p cairn -p cairn-bench
BYTES=$(( LINES * 424 ))
END="$(date -u +%Y-%m-%dT%H:%M:00Z)"
CORPUS="$OUT/search-corpus-${LINES}.ndjson"
[ -s "$CORPUS" ] || target/release/cairn-bench gen --kind json --bytes "$BYTES" --out "$CORPUS" --seed 7 --end "$END"
DATA="$OUT/search-data"
rm -rf "$DATA"
PORT=$(target/release/cairn-bench free-port)
CAIRN_NOW="$END" target/release/cairn serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" >"$OUT/search-server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
target/release/cairn-bench wait-ready --server "http://127.0.0.1:$PORT"
target/release/cairn-bench load --server "http://127.0.0.1:$PORT" --file "$CORPUS" --index logs-bench --clients "$CLIENTS" --pid "$PID"
curl -s -XPOST "127.0.0.1:$PORT/_flush" >/dev/null
echo "docs: $(curl -s "127.0.0.1:$PORT/logs-bench/_count")"
echo "disk: $(du -sh "$DATA" | cut -f1) for $(du -sh "$CORPUS" | cut -f1) raw"
.venv/bin/python bench/search_bench.py --server "http://127.0.0.1:$PORT" --index logs-bench --raw "$CORPUS" --pid "$PID" --reps "${REPS:-30}"
