#!/usr/bin/env bash
# stall.sh BINARY RUNS: the keep-alive stall check of vendor/tiny_http/PATCHES.md.
# Starts a fresh 4-worker bare server (benches/bare_server.rs, or the same
# file built against upstream tiny_http 0.12.0) per run, sends hey -n 2000
# -c 10 with a 3 s client timeout, and counts the runs with unanswered requests.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
bin=${1:?usage: stall.sh BINARY RUNS}
runs=${2:?usage: stall.sh BINARY RUNS}
work=$(mktemp -d /tmp/wasmengine-stall.XXXXXX)
on_exit_remove "$work"
bad=0
lost=0
for _ in $(seq "$runs"); do
  "$bin" 127.0.0.1:0 4 >"$work/address" &
  pid=$!
  # The server prints its address first.
  wait_for 30 "the bare server's address" test -s "$work/address"
  address=$(head -1 "$work/address")
  out=$(hey -n 2000 -c 10 -t 3 -m POST -d x "http://$address/" 2>&1 || true)
  ok=$(awk '$1 == "[200]" {print $2}' <<<"$out")
  if [[ ${ok:-0} != 2000 ]]; then
    bad=$((bad + 1))
    lost=$((lost + 2000 - ${ok:-0}))
  fi
  kill "$pid"
  wait "$pid" 2>/dev/null || true
done
echo "$bin: $bad of $runs runs had unanswered requests ($lost requests in all)"
