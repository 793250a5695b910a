#!/usr/bin/env bash
# Builds the cargo-fuzz targets and runs each one for a bounded time.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     SECONDS per target (default 60); default: all targets
#
# Exits 1 when any target found a crash (a panic, a failed assertion, a sanitizer report, a
# timeout or an out-of-memory), printing the artifact's path and the command that replays
# it; 0 otherwise. Per-target logs go to fuzz/logs/, the growing corpus to
# fuzz/corpus/TARGET (libFuzzer writes there), crash inputs to fuzz/artifacts/TARGET; all
# three are git-ignored. The committed seeds in fuzz/seeds/TARGET are read, never written.
#
# Stable toolchain only, on purpose (see fuzz/README.md):
# - The coverage instrumentation cargo-fuzz adds (-Cpasses=sancov-module, -Cllvm-args=...)
#   is made of stable -C flags; libFuzzer itself is C++ built by the libfuzzer-sys crate.
# - AddressSanitizer is the one nightly-only flag (-Zsanitizer=address). RUSTC_BOOTSTRAP=1
#   lets the stable compiler accept it; the ASan runtime ships with the stable std.
#   FUZZ_SANITIZER=none builds without it (and then without RUSTC_BOOTSTRAP): fewer
#   checks, about 2.8 times as many executions per second (measured on `token`).
# - The default build is release with debug assertions and overflow checks (cargo-fuzz's
#   default), so an integer overflow is a crash.
set -euo pipefail

SECONDS_PER_TARGET="${1:-60}"
shift || true
ALL_TARGETS=(token jwk_set config json x509)
TARGETS=("${@:-${ALL_TARGETS[@]}}")
SANITIZER="${FUZZ_SANITIZER:-address}"

if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -lt 1 ]; then
    echo "usage: fuzz/run.sh [SECONDS] [TARGET...]   (targets: ${ALL_TARGETS[*]})" >&2
    exit 2
fi

cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi

if [ "$SANITIZER" != none ]; then
    export RUSTC_BOOTSTRAP=1
fi

echo "== building ${TARGETS[*]} (sanitizer: $SANITIZER)"
for target in "${TARGETS[@]}"; do
    cargo fuzz build --sanitizer "$SANITIZER" "$target"
done

mkdir -p fuzz/logs
failed=()
for target in "${TARGETS[@]}"; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus" "fuzz/artifacts/$target"
    log="fuzz/logs/$target.log"
    echo "== fuzzing $target for ${SECONDS_PER_TARGET}s (log: $log)"
    status=0
    cargo fuzz run --sanitizer "$SANITIZER" "$target" "$corpus" "fuzz/seeds/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\).*/cov \1, features \2, corpus \3/p' <<<"$last")
    echo "   $target: ${runs:-?} runs, ${speed:-?} exec/s, ${cov:-no coverage line}"
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        echo "!! $target FAILED (exit $status); last lines of $log:"
        grep -E 'panicked|ERROR: |SUMMARY|Test unit written to' "$log" | head -8 | sed 's/^/   /'
        while read -r artifact; do
            echo "   artifact: $artifact"
            echo "   replay:   ${RUSTC_BOOTSTRAP:+RUSTC_BOOTSTRAP=1 }cargo fuzz run --sanitizer $SANITIZER $target $artifact"
        done < <(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "== crashes found in: ${failed[*]}"
    exit 1
fi
echo "== no crash in ${TARGETS[*]} (${SECONDS_PER_TARGET}s each)"
