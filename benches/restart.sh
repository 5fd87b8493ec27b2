#!/usr/bin/env bash
# restart.sh: time from starting the engine on a data directory to serving
# (a benchmark, not a test; docs/performance.md records its output).
#
# Builds two data directories: "two" with the stock authentication
# (string ABI) and authentication-wasi (WASI) examples, and "many" with
# COUNT (default 1000) one-function modules as in benches/scale.sh
# (add_NNNNN(i32, i32) -> i32, 60 bytes each). Then, ROUNDS times (default
# 15), starts each binary of ENGINES (default: the release build) on a copy
# of each directory in turn (interleaved, so that the machine's load falls
# on all of them alike) and measures, from the spawn, when a request first
# gets an answer (GET /function/list answered 200: "serving", polled over
# a fresh connection every 0.2 ms) and when a first invoke is answered
# correctly ("first invoke": authentication-wasi, or add_00001). Prints the
# median and minimum per engine and directory, and the ratio of medians
# to the first engine's.
#
# Environment: ENGINES, COUNT, ROUNDS, NICE (default 15), KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

count=${COUNT:-1000}
rounds=${ROUNDS:-15}
work=$(mktemp -d /tmp/wasmengine-restart.XXXXXX)
[ "${KEEP:-0}" = 1 ] || on_exit_remove "$work"
[ -n "${ENGINES:-}" ] || cargo build --release --quiet --bin wasm_engine
read -r -a engines <<<"${ENGINES:-target/release/wasm_engine}"
app=experiments/application
auth=$app/authentication/target/wasm32-unknown-unknown/release/authentication.wasm
auth_wasi=$app/authentication-wasi/target/wasm32-wasip1/release/authentication-wasi.wasm
[ -f "$auth" ] && [ -f "$auth_wasi" ] || experiments/build-apps.sh >/dev/null

registry=127.0.0.1:$(free_port)
start_registry "$registry" "$work/registry"
engine=${engines[0]}
"$engine" push "$auth" "$registry/authentication:v1" >/dev/null
"$engine" push "$auth_wasi" "$registry/authentication-wasi:v1" >/dev/null
benches/push_add_modules.sh "$engine" "$registry" "$work/modules" "$count"

# Fills a data directory through a running engine, then stops it.
fill() { # dir deploys...
  local dir=$1 port pid
  shift
  port=$(free_port)
  RUST_LOG=off "$engine" --listen "127.0.0.1:$port" --data-dir "$dir" >/dev/null 2>&1 &
  pid=$!
  wait_for 30 "the engine" curl -fs "http://127.0.0.1:$port/function/list"
  for body in "$@"; do
    curl -fs -o /dev/null -X POST "http://127.0.0.1:$port/function/deploy" -d "$body"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
fill "$work/two" \
  "{\"function_name\": \"authentication\", \"function_image\": \"$registry/authentication:v1\", \"wasi_cap\": false}" \
  "{\"function_name\": \"authentication-wasi\", \"function_image\": \"$registry/authentication-wasi:v1\", \"wasi_cap\": true}"
many=()
for i in $(seq -f '%05g' "$count"); do
  many+=("{\"function_name\": \"add_$i\", \"function_image\": \"$registry/add-$i:v1\", \"wasi_cap\": false}")
done
fill "$work/many" "${many[@]}"

python3 - "$work" "$rounds" "${NICE:-15}" "${engines[@]}" <<'PY'
import json, os, shutil, signal, socket, statistics, subprocess, sys, time
work, rounds, niceness, engines = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

def request(port, method, path, body=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return data

invokes = {
    "two": (b'{"function_name": "authentication-wasi", "args": {"arg_uri": "yes", "arg_body": "yes", "arg_secret": "12345"}}', b"200 OK"),
    "many": (b'{"function_name": "add_00001", "args": {"a": "2", "b": "3"}}', b"5"),
}
results = {}
for _ in range(rounds):
    for directory in ("two", "many"):
        for index, engine in enumerate(engines):
            data = f"{work}/run"
            shutil.rmtree(data, ignore_errors=True)
            shutil.copytree(f"{work}/{directory}", data)
            port = free_port()
            started = time.perf_counter()
            child = subprocess.Popen(["nice", "-n", str(niceness), engine, "--listen", f"127.0.0.1:{port}", "--data-dir", data],
                                     env={**os.environ, "RUST_LOG": "off"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while True:
                try:
                    if request(port, "GET", "/function/list").startswith(b"HTTP/1.1 200"):
                        break
                except OSError:
                    time.sleep(0.0002)
            serving = time.perf_counter() - started
            body, expected = invokes[directory]
            answer = request(port, "POST", "/function/invoke", body)
            first = time.perf_counter() - started
            if not (answer.startswith(b"HTTP/1.1 200") and expected in answer):
                sys.exit(f"{engine} on {directory}: the first invoke answered {answer[:300]!r}")
            child.send_signal(signal.SIGTERM); child.wait()
            results.setdefault((directory, index), []).append((serving * 1e3, first * 1e3))

print(f"{'directory':<10} {'engine':<44} {'serving median (min) ms':>24} {'first invoke median (min) ms':>30} {'ratio':>6}")
for directory in ("two", "many"):
    base = None
    for index, engine in enumerate(engines):
        runs = results[(directory, index)]
        serving = statistics.median(r[0] for r in runs)
        first = statistics.median(r[1] for r in runs)
        base = base or serving
        print(f"{directory:<10} {engine:<44} {serving:>13.1f} ({min(r[0] for r in runs):5.1f}) {first:>19.1f} ({min(r[1] for r in runs):5.1f}) {serving / base:>6.2f}")
PY
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%d)"
