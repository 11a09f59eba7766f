#!/usr/bin/env bash
# Whole-process eval throughput of this checkout against an earlier commit, in one run:
# builds REF's karma-host in release mode (in a git worktree, sharing this target directory so
# its dependencies are not rebuilt), keeps that binary aside, then runs the eval_throughput bench
# with it as the baseline. Usage: bench/eval_throughput_ab.sh [REF] (default: d6aee54, the last
# commit before the task seam).
set -euo pipefail
ref="${1:-d6aee54}"
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
worktree="$(mktemp -d)/karma-host-$ref"
trap 'git -C "$root" worktree remove --force "$worktree" >/dev/null 2>&1 || true' EXIT
git -C "$root" worktree add --detach "$worktree" "$ref" >/dev/null
mkdir -p "$target/ab"
(cd "$worktree" && CARGO_TARGET_DIR="$target" cargo build --release --quiet -p karma-host)
cp "$target/release/karma-host" "$target/ab/karma-host-$ref"
echo "baseline: $ref ($(git -C "$root" log -1 --format=%s "$ref" | cut -c1-70))"
cd "$root"
# The A/B is the point here: the streaming-memory part runs on a smaller file unless asked.
KARMA_BENCH_JSONL_MIB="${KARMA_BENCH_JSONL_MIB:-100}" KARMA_BENCH_BASELINE_BIN="$target/ab/karma-host-$ref" \
  cargo bench -p karma-host --bench eval_throughput
