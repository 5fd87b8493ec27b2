#!/usr/bin/env bash
# cold_start.sh: deploy and first-invoke latency over HTTP (a benchmark, not a test).
#
# Starts a loopback docker-registry and the release engine (logging off),
# then for each module deploys it, invokes it once and deletes it, ROUNDS
# times, and prints the minimum, median and 90th percentile of "deploy
# answered" and "first invoke answered" as curl sees them. Then restarts the
# engine with every module deployed and times the start to the first answer.
#
# Modules: hello (small, WASI), big (the unstripped debug build of
# authentication-wasi, ~2.5 MB, WASI) and big2 (the unstripped debug build of
# authentication's string-ABI core, ~2.0 MB, numeric ABI; its first invoke
# with ptr = len = 0 is answered with a 500, which still times a full
# instantiate-and-call).
#
# Environment: ROUNDS (default 20), PHASES=1 (the engine logs each deploy's
# phases at debug level, as the "install phases:" line of
# docs/development.md, to $work/engine.log; their medians are printed), ENGINE (the
# binary to measure, default the release build; for comparing two builds),
# KEEP=1 (leave the work directory, with the engine's log, in place).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-20}
work=$(mktemp -d /tmp/wasmengine-cold.XXXXXX)
source scripts/lib.sh
on_exit_remove "$work"

for tool in docker-registry curl python3; do
  command -v "$tool" >/dev/null || { echo "cold_start.sh: $tool is missing (make load installs it)" >&2; exit 1; }
done
now_ns() { date +%s%N; }
ms_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1000000 }'; }

echo "== building (release engine, examples, two large unstripped modules)"
cargo build --release --quiet --bin wasm_engine
experiments/build-apps.sh >/dev/null
app=experiments/application
(cd $app/authentication-wasi && cargo build --quiet --target wasm32-wasip1 --target-dir "$work/big")
(cd $app/authentication && cargo build --quiet --target wasm32-unknown-unknown --target-dir "$work/big2")
cp $app/hello/target/wasm32-wasip1/release/hello.wasm "$work/hello.wasm"
cp "$work/big/wasm32-wasip1/debug/authentication-wasi.wasm" "$work/big.wasm"
cp "$work/big2/wasm32-unknown-unknown/debug/authentication.wasm" "$work/big2.wasm"
engine=${ENGINE:-target/release/wasm_engine}

registry=127.0.0.1:$(free_port)
start_registry "$registry" "$work/registry"
for module in hello big big2; do "$engine" push "$work/$module.wasm" "$registry/$module-wasm:v1" >/dev/null; done

log_level=off
[ "${PHASES:-0}" = 1 ] && log_level=wasm_engine=debug
start_engine() { # port
  RUST_LOG=$log_level "$engine" --listen "127.0.0.1:$1" --data-dir "$work/data" >>"$work/engine.log" 2>&1 &
  engine_pid=$!
  on_exit_kill "$engine_pid"
  engine_url=http://127.0.0.1:$1
}
start_engine "$(free_port)"
wait_for 30 "the engine" curl -fs "$engine_url/function/list"

post() { # path body -> "status seconds"
  curl -s -o /dev/null -w '%{http_code} %{time_total}' -X POST "$engine_url/function/$1" -d "$2"
}
deploy() { # module function wasi_cap
  post deploy "{\"function_name\": \"$2\", \"function_image\": \"$registry/$1-wasm:v1\", \"wasi_cap\": $3}"
}
# module function wasi_cap args -> one line per round: deploy_s invoke_s invoke_status
rounds_of() {
  local module=$1 name=$2 wasi=$3 args=$4 deploy invoke
  for _ in $(seq "$rounds"); do
    deploy=$(deploy "$module" "$name" "$wasi")
    [ "${deploy%% *}" = 200 ] || { echo "deploy of $name answered $deploy" >&2; tail "$work/engine.log" >&2; exit 1; }
    invoke=$(post invoke "{\"function_name\": \"$name\", \"args\": $args}")
    post delete "{\"function_name\": \"$name\"}" >/dev/null
    echo "${deploy#* } ${invoke#* } ${invoke%% *}"
  done
}
summary() { # column: first round, then min, median, p90 of all rounds
  awk -v col="$1" 'NR == 1 { first = $col * 1000 } { print $col * 1000 } END { print "first", first }' |
    sort -n | awk '$1 == "first" { first = $2; next } { v[++n] = $1 } END {
    printf "first %5.1f  min %5.1f  median %5.1f  p90 %5.1f ms", first, v[1], v[int((n + 1) / 2)], v[int(n * 0.9 + 0.5)] }'
}

echo
echo "== $rounds rounds of deploy, first invoke, delete (loopback registry)"
printf '%-36s %-52s %s\n' module "deploy answered" "first invoke answered"
auth_args='{"arg_uri": "yes", "arg_body": "yes", "arg_secret": "12345"}'
modules=(
  "hello hello true {\"name\": \"edge\"}"
  "big big true $auth_args"
  "big2 authentication false $auth_args"
)
for spec in "${modules[@]}"; do
  read -r module name wasi args <<<"$spec"
  rounds_of "$module" "$name" "$wasi" "$args" >"$work/$module.times"
  statuses=$(awk '{print $3}' "$work/$module.times" | sort | uniq -c | awk '{printf "%s x%s ", $2, $1}')
  printf '%-36s %-52s %s  (statuses: %s)\n' "$module ($(stat -c %s "$work/$module.wasm") bytes)" \
    "$(summary 1 <"$work/$module.times")" "$(summary 2 <"$work/$module.times")" "$statuses"
done

for spec in "${modules[@]}"; do
  read -r module name wasi _ <<<"$spec"
  deploy "$module" "$name" "$wasi" >/dev/null
done
kill "$engine_pid"; wait "$engine_pid" 2>/dev/null || true
restart_port=$(free_port)
started=$(now_ns)
start_engine "$restart_port"
until curl -fs -o /dev/null "$engine_url/function/list"; do sleep 0.001; done
serving=$(ms_since "$started")
first=$(post invoke "{\"function_name\": \"big\", \"args\": $auth_args}")
echo "restart (3 functions restored): serving after $serving ms (curl retries every 1 ms), then the first invoke of big answered ${first%% *} in $(awk -v s="${first#* }" 'BEGIN { printf "%.1f", s * 1000 }') ms"
if [ "${PHASES:-0}" = 1 ]; then
  echo
  echo "== deploy phases, median of $rounds (engine debug log)"
  # "install phases: function=NAME pull_ms=X stage_ms=Y commit_ms=Z"
  grep -o 'install phases: .*' "$work/engine.log" |
    awk '{ for (i = 3; i <= NF; i++) { split($i, kv, "="); field[kv[1]] = kv[2] }
           f = field["function"]; n[f]++
           pull[f, n[f]] = field["pull_ms"]; stage[f, n[f]] = field["stage_ms"]; commit[f, n[f]] = field["commit_ms"] }
         function median(a, f, k,   i, j, t, v) { for (i = 1; i <= k; i++) v[i] = a[f, i]
           for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
           return v[int((k + 1) / 2)] }
         END { for (f in n) printf "%-22s pull %6.2f ms   validate and stage %6.2f ms   commit %5.2f ms\n",
                 f, median(pull, f, n[f]), median(stage, f, n[f]), median(commit, f, n[f]) }' | sort
  grep -E 'restored|listening' "$work/engine.log" | tail -2 || true
fi
echo
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(df -T "$work" | awk 'NR == 2 {print $2}') data dir, $(date -u +%Y-%m-%d)"
