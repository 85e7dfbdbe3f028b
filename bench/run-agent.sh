#!/usr/bin/env bash
# Agent benchmark: file -> cairn agent -> file sink; file -> agent -> cairn serve; and
# the same corpus through rsyslog (imfile + omelasticsearch) into the same server, for
# comparison. Reports MB/s, shipper CPU seconds and peak RSS, server CPU seconds.
# Results: bench/out/agent/results.json (and stdout); numbers are recorded by hand in
# bench/RESULTS.md.
#
#   FILE_MB=512 SERVER_MB=64 bench/run-agent.sh
#
# Environment:
#   FILE_MB    corpus size for the file-sink run (default 512)
#   SERVER_MB  corpus size for the runs into cairn serve (default 64; 0 skips them)
#   NO_BUILD   if 1, skip cargo build --release
#   CAIRN_BIN  binary to use (default target/release/cairn)
#   BENCH_OUT  working directory (corpus, data dirs, outputs; default bench/out/agent)
# The Debian shipper needs `apt-get install rsyslog rsyslog-elasticsearch`; without it
# that run is skipped.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ "${NO_BUILD:-0}" != 1 ]]; then
  cargo build --release -p cairn
fi
exec python3 "$ROOT/bench/agent_bench.py"
