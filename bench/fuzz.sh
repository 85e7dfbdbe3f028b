#!/usr/bin/env bash
# Runs each cargo-fuzz target in fuzz/ for a given time, one after the other, and prints
# how long each ran, how many inputs it tried and whether it found a crash.
#
#   bench/fuzz.sh [SECONDS] [TARGET...]     (default: 600 s, every target)
#
# Not part of CI: it needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly
# compiler. With a nightly toolchain installed it uses `cargo +nightly fuzz`; with only a
# stable one it sets RUSTC_BOOTSTRAP=1, which lets stable accept the nightly-only flags
# cargo-fuzz passes (-Zsanitizer, coverage options). The sanitizer defaults to `none`:
# the code under test is safe Rust, so AddressSanitizer mostly costs speed; set
# CAIRN_FUZZ_SANITIZER=address to use it anyway.
#
# The corpus grows in fuzz/corpus/TARGET (seeded from fuzz/seeds/TARGET when present);
# crashes land in fuzz/artifacts/TARGET and the script exits 1 if there is any.
# Each run's output is in fuzz/out/TARGET.log.
set -euo pipefail

SECONDS_PER_TARGET="${1:-600}"
shift || true
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT/fuzz"

if ! cargo fuzz --help >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 2
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    FUZZ=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    FUZZ=(cargo fuzz)
fi
SANITIZER="${CAIRN_FUZZ_SANITIZER:-none}"

if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <("${FUZZ[@]}" list)
fi

# One build of every target (they share their dependencies), then the runs.
"${FUZZ[@]}" build -s "$SANITIZER"

mkdir -p out
failed=0
summary=()
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    if [ -d "seeds/$t" ]; then
        cp -n "seeds/$t"/* "corpus/$t"/ 2>/dev/null || true
    fi
    before=$(find "artifacts/$t" -type f | wc -l)
    start=$(date +%s)
    set +e
    # -timeout: one input taking this long counts as a hang (a finding);
    # -rss_limit_mb: so does memory growth past it.
    "${FUZZ[@]}" run -s "$SANITIZER" "$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=30 -rss_limit_mb=2048 \
        -print_final_stats=1 >"out/$t.log" 2>&1
    rc=$?
    set -e
    took=$(( $(date +%s) - start ))
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "out/$t.log" | grep -o '[0-9]*$' | tail -1)
    # libFuzzer's own account of the fuzzing time (the wall time above also counts the
    # rebuild `cargo fuzz run` does when the sources changed).
    fuzzed=$(grep -o 'Done [0-9]* runs in [0-9]* second' "out/$t.log" | grep -o '[0-9]* second' | grep -o '[0-9]*' | tail -1)
    after=$(find "artifacts/$t" -type f | wc -l)
    if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
        result="CRASH (exit $rc; see out/$t.log and artifacts/$t)"
        failed=1
    else
        result="no crash"
    fi
    summary+=("$(printf '%-22s %6ss fuzzing (%ss wall) %12s runs  %s' "$t" "${fuzzed:-?}" "$took" "${runs:-?}" "$result")")
    echo "${summary[-1]}"
done

echo
printf '%s\n' "${summary[@]}"
exit "$failed"
