#!/usr/bin/env bash
# Search benchmark on the real samples: the web access logs of tests/data/web-access
# (Apache, NASA, nginx) imported with `cairn import` into a release server, then the
# queries of bench/search_bench.py --corpus access, and ripgrep over the same raw text.
#   bench/search-samples.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/bench/out"
mkdir -p "$OUT"
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release -p cairn -p cairn-bench
RAW="$OUT/samples-web-access.log"
cat tests/data/web-access/*.log > "$RAW"
DATA="$OUT/search-samples-data"
rm -rf "$DATA"
PORT=$(target/release/cairn-bench free-port)
# "now" at the newest sample line (the Apache sample ends 2015-05-20 21:05 UTC), so
# "last 24 h" covers real data; the samples span 1995 to 2016, hence --max-past/--max-future.
CAIRN_NOW="2015-05-20T21:10:00Z" target/release/cairn serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" --max-past 36500d --max-future 36500d >"$OUT/search-samples-server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
target/release/cairn-bench wait-ready --server "http://127.0.0.1:$PORT"
target/release/cairn import tests/data/web-access --index logs-samples --server "http://127.0.0.1:$PORT" --no-state --progress off
curl -s -XPOST "127.0.0.1:$PORT/_refresh" >/dev/null
echo "docs: $(curl -s "127.0.0.1:$PORT/logs-samples/_count")"
.venv/bin/python bench/search_bench.py --corpus access --server "http://127.0.0.1:$PORT" --index logs-samples --raw "$RAW" --pid "$PID" --reps "${REPS:-30}"
