#!/usr/bin/env bash
# Bounded fuzzing for CI (issue 8): every target runs for $FUZZ_SECONDS (default 60) from
# its committed seeds on one core, without a sanitizer (stable toolchain; RUSTC_BOOTSTRAP
# lets cargo-fuzz pass its nightly flags). Any crash fails the run; the crashing input is
# left in fuzz/artifacts/<target>/ and its bytes are printed as base64 for the log.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-60}"
export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none
status=0
for target in $(cargo fuzz list); do
  corpus="corpus/$target"
  mkdir -p "$corpus" "artifacts/$target"
  log="$(mktemp)"
  if cargo fuzz run -s none "$target" "$corpus" "seeds/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    echo "fuzz $target: ${seconds} s, $runs executions, no crash"
  else
    status=1
    echo "fuzz $target: FAILED"
    tail -n 40 "$log"
    for f in "artifacts/$target"/*; do
      [ -f "$f" ] && { echo "input $f (base64):"; base64 -w0 "$f"; echo; }
    done
  fi
  rm -f "$log"
done
exit $status
