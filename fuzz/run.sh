#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 20) on nightly with cargo-fuzz, from the
# seed corpus (seed.sh). A crash, a panic or an input over the 100 ms budget fails the run and
# leaves the input under fuzz/artifacts/TARGET/. Usage: bash fuzz/run.sh [SECONDS] [TARGET...]
# Installs the nightly toolchain and cargo-fuzz when missing.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-20}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(manifest template expr threshold jsonpath duration report)
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
bash seed.sh
# No sanitizer: the code under test is safe Rust, and libFuzzer's coverage guidance is what
# finds panics and slow inputs; ASan would cost 2-3x the executions.
cargo +nightly fuzz build -s none
status=0
for target in "${targets[@]}"; do
  echo "=== fuzz $target for ${seconds}s"
  log=$(mktemp)
  if ! cargo +nightly fuzz run -s none "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    status=1
    grep -E 'panicked|slow input|ERROR|SUMMARY|Test unit written' "$log" >&2 || tail -20 "$log" >&2
    echo "fuzz $target failed: the input is under fuzz/artifacts/$target/" >&2
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
  rm -f "$log"
done
exit $status
