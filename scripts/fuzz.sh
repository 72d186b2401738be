#!/usr/bin/env bash
# Runs every cargo-fuzz (libFuzzer) target of fuzz/ for SECONDS_PER_TARGET seconds (default 60)
# and prints, per target, executions/s, total executions, corpus size and findings.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Installs cargo-fuzz from crates.io when it is missing. The project builds on stable Rust only;
# cargo-fuzz passes nightly-only flags (-Zsanitizer, sancov passes), which RUSTC_BOOTSTRAP=1 makes
# the stable compiler accept. AddressSanitizer is used when the toolchain ships its runtime
# (librustc-*_rt.asan.a), otherwise FWLEDGER_FUZZ_SANITIZER=none is forced (and said).
#
# Inputs that grow coverage go to a scratch copy of the corpus (target/fuzz/corpus/<target>);
# the kept corpus fuzz/corpus/<target> is only rewritten with `FWLEDGER_FUZZ_KEEP=1`, which
# minimizes the merged result (`cargo fuzz cmin`) before copying it back. Crashes are written to
# fuzz/artifacts/<target>/ and the script exits non-zero; copy a reproducer to
# fuzz/regressions/<target>/ once fixed, so that `cargo test -p fwledger-fuzz` replays it.
# FWLEDGER_FUZZ_NO_BUILD=1 runs the binaries already built. Nothing here listens on the network.
# Long runs: e.g. `bash scripts/fuzz.sh 3600` (an hour per target).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
case "$seconds" in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;; esac

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/fuzz}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz from crates.io" >&2
    cargo install cargo-fuzz --locked >&2
fi

sysroot="$(rustc --print sysroot)"
host="$(rustc -vV | sed -n 's/^host: //p')"
sanitizer="${FWLEDGER_FUZZ_SANITIZER:-address}"
if [ "$sanitizer" = address ] && ! ls "$sysroot/lib/rustlib/$host/lib/"librustc-*_rt.asan.a >/dev/null 2>&1; then
    echo "no ASan runtime in $sysroot for $host: fuzzing with --sanitizer none" >&2
    sanitizer=none
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi
common=(--fuzz-dir fuzz --features libfuzzer --sanitizer "$sanitizer" --debug-assertions
    --target-dir "$CARGO_TARGET_DIR")

if [ "${FWLEDGER_FUZZ_NO_BUILD:-0}" = 1 ]; then
    echo "using the targets already built in $CARGO_TARGET_DIR/$host/release" >&2
else
    echo "building ${#targets[@]} targets (sanitizer: $sanitizer, debug assertions on)" >&2
    cargo fuzz build "${common[@]}" >&2
fi

printf '%-16s %10s %14s %8s %9s %s\n' target "exec/s" executions corpus findings notes
status=0
logs="$CARGO_TARGET_DIR/logs"
mkdir -p "$logs"
for target in "${targets[@]}"; do
    scratch="$CARGO_TARGET_DIR/corpus/$target"
    rm -rf "$scratch" && mkdir -p "$scratch" "fuzz/artifacts/$target"
    cp -r "fuzz/corpus/$target/." "$scratch/" 2>/dev/null || true
    log="$logs/$target.log"
    touch "$log.start"
    set +e
    # The binary cargo-fuzz built above, run directly (no rebuild between targets).
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}" \
        "$CARGO_TARGET_DIR/$host/release/$target" "$scratch" "fuzz/corpus/$target" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -close_fd_mask=1 -artifact_prefix="fuzz/artifacts/$target/" \
        >"$log" 2>&1
    rc=$?
    set -e
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    corpus="$(find "$scratch" -type f | wc -l)"
    findings="$(find "fuzz/artifacts/$target" -type f -newer "$log.start" 2>/dev/null | wc -l || true)"
    notes=""
    if [ "$rc" -ne 0 ]; then
        findings="$(grep -cE '^(==[0-9]+==ERROR|thread .* panicked|SUMMARY: libFuzzer)' "$log" || true)"
        notes="exit $rc, see $log and fuzz/artifacts/$target/"
        status=1
    fi
    printf '%-16s %10s %14s %8s %9s %s\n' "$target" "${rate:-?}" "${execs:-?}" "$corpus" "${findings:-0}" "$notes"
    if [ "${FWLEDGER_FUZZ_KEEP:-0}" = 1 ] && [ "$rc" -eq 0 ]; then
        # Minimize: merge the scratch corpus into an empty directory (libFuzzer keeps only
        # inputs that add coverage), then replace the kept corpus with it (seeds stay).
        minimized="$CARGO_TARGET_DIR/corpus/$target.min"
        rm -rf "$minimized" && mkdir -p "$minimized"
        ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}" \
            "$CARGO_TARGET_DIR/$host/release/$target" -merge=1 -max_len=65536 "$minimized" \
            "fuzz/corpus/$target" "$scratch" >>"$log" 2>&1
        find "fuzz/corpus/$target" -type f ! -name 'seed-*' -delete
        seeds="$(cat "fuzz/corpus/$target"/seed-* 2>/dev/null | wc -c) $(sha1sum "fuzz/corpus/$target"/seed-* 2>/dev/null | cut -d' ' -f1 | tr '\n' ' ')"
        for f in "$minimized"/*; do
            [ -f "$f" ] || continue
            sum="$(sha1sum "$f" | cut -d' ' -f1)"
            case "$seeds" in *"$sum"*) ;; *) cp "$f" "fuzz/corpus/$target/$sum" ;; esac
        done
    fi
done
exit "$status"
