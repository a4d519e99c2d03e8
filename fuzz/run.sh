#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 20) from the seed corpus (seed.sh). A crash, a
# panic or an input over the 100 ms budget fails the run and leaves the input under
# fuzz/artifacts/TARGET/. Usage: bash fuzz/run.sh [SECONDS] [TARGET...]
#
# The targets are built on nightly with libFuzzer's coverage instrumentation, the flags
# `cargo fuzz build -s none` passes (no sanitizer: the code under test is safe Rust, and
# coverage guidance is what finds panics and slow inputs), so neither cargo-fuzz nor ASan is
# needed. Installs the nightly toolchain when missing.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-20}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(manifest template expr threshold jsonpath duration report)
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
bash seed.sh
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
# --target keeps the instrumentation off build scripts and proc macros, as cargo-fuzz does.
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
  cargo +nightly build --release --locked --bins --target "$triple"
status=0
for target in "${targets[@]}"; do
  echo "=== fuzz $target for ${seconds}s"
  log=$(mktemp)
  mkdir -p "artifacts/$target"
  if ! "target/$triple/release/$target" "corpus/$target" -artifact_prefix="artifacts/$target/" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    status=1
    grep -E 'panicked|slow input|ERROR|SUMMARY|Test unit written' "$log" >&2 || tail -20 "$log" >&2
    echo "fuzz $target failed: the input is under fuzz/artifacts/$target/" >&2
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
  rm -f "$log"
done
exit $status
