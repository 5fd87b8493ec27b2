#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] [TARGET...]: runs each fuzz target (default: all) for
# SECONDS (default 20) with libFuzzer through `cargo +nightly fuzz`, starting
# from the seed corpus in fuzz/corpus/<target> (left unchanged: new inputs go
# to a temporary directory). Installs cargo-fuzz if it is missing. Prints the
# executions per target; a crash fails the run and leaves its input under
# fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
source ../scripts/lib.sh
seconds=${1:-20}
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(request_body request_head image_reference manifest layer string_result)
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q '^nightly' || { echo "fuzz/run.sh: the nightly toolchain is missing (rustup toolchain install nightly)" >&2; exit 1; }
work=$(mktemp -d /tmp/wasmengine-fuzz.XXXXXX)
on_exit_remove "$work"
cargo +nightly fuzz build
for target in "${targets[@]}"; do
  mkdir -p "$work/$target"
  log="$work/$target.log"
  if ! cargo +nightly fuzz run "$target" "$work/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz/run.sh: $target failed; see fuzz/artifacts/$target/" >&2
    exit 1
  fi
  printf '%-16s %s\n' "$target" "$(grep -E '^Done [0-9]+ runs' "$log" | tail -1)"
done
