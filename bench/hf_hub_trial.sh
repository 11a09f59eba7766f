#!/usr/bin/env bash
# Issue 16: our hub client (hub/) against hf-hub 1.0 behind the same karma-hub API
# (bench/hf_hub_trial/), measured in one run so both sides see the same machine load.
#
# Each side is a fresh clone of HEAD with its own target directory ("trial" gets the two trial
# files copied over hub/). For each it prints: the clean `cargo build --release --workspace`
# wall and CPU time, the size of karma-host and of each plugin .so (as built, and stripped),
# `list models` wall time and peak RSS (cold scan, then the median of 5 warm runs), the number
# of crates in the build, and the hub tests (the fake-hub e2e tests and karma-hub's unit tests)
# with their outcome. `--ci` also runs `.ci/run` in each clone (35-40 minutes per side here).
#
# Usage: bench/hf_hub_trial.sh [--ci]   (KARMA_TRIAL_DIR keeps the clones somewhere chosen)
# Needs crates.io for the trial's new dependencies; CPU time (user + sys) is the figure that
# survives a shared machine, wall time is printed beside it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
run_ci=0
[ "${1:-}" = "--ci" ] && run_ci=1
work="${KARMA_TRIAL_DIR:-$(mktemp -d)}"
mkdir -p "$work"
echo "clones in $work (HEAD $(git -C "$root" rev-parse --short HEAD))"

hub_tests=(fake_hub:: candle_llm::a_hub_model_is_downloaded_with_its_files_then_used_offline)

prepare() {
    local side=$1 dir="$work/$1"
    rm -rf "$dir"
    git clone -q "$root" "$dir"
    if [ "$side" = trial ]; then
        cp "$root/bench/hf_hub_trial/Cargo.toml" "$dir/hub/Cargo.toml"
        cp "$root/bench/hf_hub_trial/lib.rs" "$dir/hub/src/lib.rs"
    fi
    # Downloads (and the trial's lock file update) stay out of the build timing.
    (cd "$dir" && cargo fetch --quiet)
    # The real-model tests read these; share the copies the main checkout already fetched.
    if [ -d "$root/target/models" ]; then
        mkdir -p "$dir/target" && cp -r "$root/target/models" "$dir/target/models"
    fi
}

# Prints "<wall s> <cpu s> <peak KiB>" of the command.
timed() {
    local out
    out=$(mktemp)
    /usr/bin/time -f "%e %U %S %M" -o "$out" "$@" >/dev/null 2>"$out.err" || {
        echo "failed: $*" >&2
        tail -20 "$out.err" >&2
        return 1
    }
    awk '{ printf "%s %.1f %s\n", $1, $2 + $3, $4 }' "$out"
}

measure() {
    local side=$1 dir="$work/$1"
    cd "$dir"
    export CARGO_TARGET_DIR="$dir/target"
    read -r wall cpu _ < <(timed cargo build --release --workspace --quiet)
    echo "$side: clean release build: ${wall} s wall, ${cpu} s CPU"
    echo "$side: crates compiled: $(cargo tree --workspace --edges normal,build --prefix none 2>/dev/null \
        | sed 's/ (\*)//; s/ (proc-macro)//' | sort -u | wc -l)"
    local file
    local stripped
    stripped=$(mktemp)
    for file in target/release/karma-host target/release/libkarma_plugin_*.so; do
        strip -o "$stripped" "$file"
        echo "$side: size $(basename "$file"): $(stat -c %s "$file") bytes, $(stat -c %s "$stripped") stripped"
    done
    local plugins scan
    plugins=$(mktemp -d)
    cp target/release/libkarma_plugin_*.so "$plugins/"
    scan=$(mktemp -u)
    read -r wall _ rss < <(KARMA_SCAN_CACHE="$scan" timed target/release/karma-host --plugins-dir "$plugins" list models)
    echo "$side: list models, cold scan: ${wall} s wall, ${rss} KiB peak RSS"
    local walls=() rsses=() i
    for i in 1 2 3 4 5; do
        read -r wall _ rss < <(KARMA_SCAN_CACHE="$scan" timed target/release/karma-host --plugins-dir "$plugins" list models)
        walls+=("$wall") rsses+=("$rss")
    done
    echo "$side: list models, warm (median of 5): $(printf '%s\n' "${walls[@]}" | sort -n | sed -n 3p) s wall," \
        "$(printf '%s\n' "${rsses[@]}" | sort -n | sed -n 3p) KiB peak RSS"
    local log="$work/$side-hub-tests.log"
    cargo test --release -p karma-tests --test e2e -- "${hub_tests[@]}" >"$log" 2>&1 || true
    cargo test --release -p karma-hub >>"$log" 2>&1 || true
    grep -E '^test .* \.\.\. ' "$log" | sed "s/^/$side: /" || echo "$side: no test ran (see $log)"
    if [ "$run_ci" = 1 ]; then
        unset CARGO_TARGET_DIR
        rm -rf target
        mkdir -p target && [ -d "$root/target/models" ] && cp -r "$root/target/models" target/models
        local status=0
        read -r wall cpu _ < <(timed bash .ci/run) || status=1
        echo "$side: .ci/run: ${wall:-?} s wall, ${cpu:-?} s CPU$([ $status = 1 ] && echo ", FAILED")"
    fi
    cd "$root"
}

for side in ours trial; do
    prepare "$side"
done
for side in ours trial; do
    measure "$side"
done
