#!/usr/bin/env bash
# first_call.sh: the first invoke after a deploy against later ones, for the
# third-party programs (a benchmark, not a test; docs/performance.md records
# its output).
#
# Starts a loopback docker-registry and one engine per binary in ENGINES
# (default: the release build), side by side. Each round deploys every
# program of experiments/thirdparty/build under a fresh name on each
# engine in turn, waits SETTLE_MS (default 1000: the background
# translation's time, the same pause for every engine), invokes it once
# (the first call) and STEADY more times, and deletes it. Prints per program
# and engine the medians over ROUNDS (default 5) of the deploy, the first
# call, the median of the later calls, and first / steady. The engines log
# at debug level to $work/<n>.log: "warmed" counts how many first calls
# came after the engine logged "warmed function NAME".
#
# Environment: ENGINES, ROUNDS, STEADY (default 9), SETTLE_MS, NICE
# (default 15: the engines' niceness), KEEP=1 (leave the work directory).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

rounds=${ROUNDS:-5}
steady=${STEADY:-9}
settle_ms=${SETTLE_MS:-1000}
work=$(mktemp -d /tmp/wasmengine-first.XXXXXX)
[ "${KEEP:-0}" = 1 ] || on_exit_remove "$work"
[ -n "${ENGINES:-}" ] || cargo build --release --quiet --bin wasm_engine
read -r -a engines <<<"${ENGINES:-target/release/wasm_engine}"
build=experiments/thirdparty/build
programs=(pulldown-cmark jsonxf htmlq hoedown)
for program in "${programs[@]}"; do
  [ -f "$build/$program.wasm" ] || { echo "first_call.sh: $build/$program.wasm is missing (make apps)" >&2; exit 1; }
done

registry=127.0.0.1:$(free_port)
start_registry "$registry" "$work/registry"
for program in "${programs[@]}"; do
  "${engines[0]}" push "$build/$program.wasm" "$registry/$program:v1" >/dev/null
done
urls=()
for index in "${!engines[@]}"; do
  port=$(free_port)
  RUST_LOG=wasm_engine=debug nice -n "${NICE:-15}" "${engines[$index]}" --listen "127.0.0.1:$port" \
    --data-dir "$work/data$index" >"$work/$index.log" 2>&1 &
  on_exit_kill $!
  urls+=("http://127.0.0.1:$port")
  wait_for 30 "engine $index" curl -fs "${urls[$index]}/function/list"
done

# A Markdown-and-HTML document of about 8 KB, as the args' one value.
text=$(python3 -c 'import json; print(json.dumps({"text": ("# Title\n\nSome *em* and **strong** text, a [link](http://example.com), `code`, <b>html</b> &amp; more.\n\n- one\n- two\n\n" * 60)}))')
post() { # url path body -> "status seconds"
  curl -s -o /dev/null -w '%{http_code} %{time_total}' -X POST "$1/function/$2" -d "$3"
}
for round in $(seq "$rounds"); do
  for program in "${programs[@]}"; do
    for index in "${!engines[@]}"; do
      url=${urls[$index]} name="${program//-/_}_$round"
      deploy=$(post "$url" deploy "{\"function_name\": \"$name\", \"function_image\": \"$registry/$program:v1\", \"wasi_cap\": true}")
      [ "${deploy%% *}" = 200 ] || { echo "deploy of $name answered $deploy" >&2; exit 1; }
      sleep "$(awk -v ms="$settle_ms" 'BEGIN { print ms / 1000 }')"
      warmed=$(grep -c "warmed function $name:" "$work/$index.log" || true)
      body="{\"function_name\": \"$name\", \"args\": $text}"
      first=$(post "$url" invoke "$body")
      [ "${first%% *}" = 200 ] || { echo "invoke of $name answered $first" >&2; exit 1; }
      later=$(for _ in $(seq "$steady"); do post "$url" invoke "$body" | awk '{ print $2 }'; echo; done |
        sort -n | awk 'NF { v[++n] = $1 } END { print v[int((n + 1) / 2)] }')
      post "$url" delete "{\"function_name\": \"$name\"}" >/dev/null
      echo "$program $index ${deploy#* } ${first#* } $later $warmed" >>"$work/times"
    done
  done
done

printf '%-16s %-40s %10s %10s %10s %8s %7s\n' program engine "deploy ms" "first ms" "steady ms" first/st warmed
for program in "${programs[@]}"; do
  for index in "${!engines[@]}"; do
    awk -v p="$program" -v i="$index" -v e="${engines[$index]}" '
      $1 == p && $2 == i { n++; d[n] = $3 * 1000; f[n] = $4 * 1000; s[n] = $5 * 1000; r[n] = $4 / $5; w += $6 }
      function median(a,   i, j, t, m) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return a[int((n + 1) / 2)] }
      END { printf "%-16s %-40s %10.2f %10.2f %10.2f %8.2f %4d/%d\n", p, e, median(d), median(f), median(s), median(r), w, n }' "$work/times"
  done
done
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%d)"
