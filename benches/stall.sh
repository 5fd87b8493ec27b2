#!/bin/bash
# stall.sh BINARY RUNS: the keep-alive stall check of vendor/tiny_http/PATCHES.md.
# Starts a fresh 4-worker bare server (benches/bare_server.rs, or the same
# file built against upstream tiny_http 0.12.0) per run, sends hey -n 2000
# -c 10 with a 3 s client timeout, and counts the runs with unanswered requests.
bin=$1; runs=$2; bad=0; lost=0
for i in $(seq $runs); do
  $bin 127.0.0.1:0 4 > /tmp/addr2 & pid=$!
  sleep 0.2; addr=$(head -1 /tmp/addr2)
  out=$(hey -n 2000 -c 10 -t 3 -m POST -d x http://$addr/ 2>&1)
  ok=$(echo "$out" | grep -E '^\s+\[200\]' | awk '{print $2}')
  [ "${ok:-0}" != 2000 ] && { bad=$((bad+1)); lost=$((lost+2000-${ok:-0})); }
  kill $pid; wait $pid 2>/dev/null
done
echo "$bin: $bad of $runs runs had unanswered requests ($lost requests in all)"
