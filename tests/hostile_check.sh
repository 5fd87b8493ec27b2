#!/usr/bin/env bash
# hostile_check.sh [ENGINE_BINARY] [SECONDS]: hostile clients against both
# listeners while normal invokes run, counted, never timed by noise.
#
# Starts a registry and the engine (default: target/debug/wasm_engine) with
# the provider API on, deploys the gcd example, then for SECONDS (default 30)
# runs at once, on both listeners: slowloris (a header byte every 2 s, and a
# new connection when one is closed), dripping bodies (a body byte every 2 s
# to a route that does not read it, and to invoke) and header floods (MBs of
# header lines). Meanwhile a client invokes gcd on each listener in a loop.
# Fails unless every normal invoke answers 200 within its deadline (the
# default invocation timeout plus the client timeout) and the engine's RSS
# stays under a bound; prints the figures. .ci/run runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

engine=${1:-target/debug/wasm_engine}
seconds=${2:-30}
max_rss_kib=${HOSTILE_CHECK_MAX_RSS_KIB:-262144}
for tool in docker-registry curl python3; do
  command -v "$tool" >/dev/null || { echo "hostile_check: $tool is missing" >&2; exit 1; }
done
work=$(mktemp -d /tmp/wasmengine-hostile-check.XXXXXX)
source scripts/lib.sh
on_exit_remove "$work"

registry=127.0.0.1:$(free_port)
start_registry "$registry" "$work/registry"
gcd=experiments/application/gcd/target/wasm32-unknown-unknown/release/gcd.wasm
[[ -f $gcd ]] || { echo "hostile_check: $gcd is missing (make apps)" >&2; exit 1; }
$engine push "$gcd" "$registry/gcd-wasm:v1" >/dev/null

port=$(free_port)
provider_port=$(free_port)
# Small client timeout: heads get 2 s, bodies 4 s.
RUST_LOG=warn $engine --listen "127.0.0.1:$port" --provider-listen "127.0.0.1:$provider_port" \
  --data-dir "$work/data" --workers 2 --client-timeout-ms 2000 2>"$work/engine.log" &
engine_pid=$!
on_exit_kill $engine_pid
url=http://127.0.0.1:$port
wait_for 60 "the engine" curl -fs "$url/healthz"
curl -fs -X POST "$url/function/deploy" \
  -d "{\"function_name\": \"gcd\", \"function_image\": \"$registry/gcd-wasm:v1\"}" >/dev/null

python3 - "$port" "$provider_port" "$seconds" "$engine_pid" "$max_rss_kib" <<'PY'
import socket, sys, threading, time

port, provider_port, seconds, pid, max_rss = (int(a) for a in sys.argv[1:])
deadline = time.time() + seconds
# Invocation timeout (10 s default) + client timeout (2 s) + slack for a
# loaded CI machine: an answer later than this is a failure.
answer_deadline = 15.0
stats = {"attack_connections": 0, "closed_by_engine": 0}
lock = threading.Lock()

def count(key):
    with lock:
        stats[key] = stats.get(key, 0) + 1

def attacker(listener_port, head, drip):
    while time.time() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", listener_port), timeout=5)
            count("attack_connections")
            s.sendall(head)
            while time.time() < deadline:
                time.sleep(2)
                s.sendall(drip)
        except OSError:
            count("closed_by_engine")
            time.sleep(0.1)
        finally:
            try: s.close()
            except Exception: pass

def flood(listener_port):
    line = b"X-Flood: " + b"f" * 1000 + b"\r\n"
    while time.time() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", listener_port), timeout=5)
            count("attack_connections")
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            for _ in range(5000):
                s.sendall(line)
        except OSError:
            count("closed_by_engine")
        finally:
            try: s.close()
            except Exception: pass

latencies, failures = [], []
def invoker(listener_port, path, body):
    request = (f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               f"Content-Length: {len(body)}\r\n\r\n{body}").encode()
    while time.time() < deadline:
        started = time.time()
        try:
            s = socket.create_connection(("127.0.0.1", listener_port), timeout=answer_deadline)
            s.settimeout(answer_deadline)
            s.sendall(request)
            answer = b""
            while True:
                chunk = s.recv(4096)
                if not chunk: break
                answer += chunk
            s.close()
            elapsed = time.time() - started
            status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/1.1 ") else b"none"
            with lock:
                if status == b"200" and elapsed < answer_deadline:
                    latencies.append(elapsed)
                else:
                    failures.append((listener_port, status, round(elapsed, 2)))
        except OSError as error:
            with lock: failures.append((listener_port, str(error), round(time.time() - started, 2)))
        time.sleep(0.05)

threads = []
for p in (port, provider_port):
    for _ in range(40):
        threads.append(threading.Thread(target=attacker, args=(p, b"GET /healthz HTTP/1.1\r\nX-Slow: ", b"a")))
    for _ in range(10):
        threads.append(threading.Thread(target=attacker, args=(p, b"POST /nowhere HTTP/1.1\r\nContent-Length: 50000\r\n\r\n", b"a")))
        threads.append(threading.Thread(target=attacker, args=(p, b"POST /function/invoke HTTP/1.1\r\nContent-Length: 50000\r\n\r\n", b"a")))
    for _ in range(4):
        threads.append(threading.Thread(target=flood, args=(p,)))
gcd = '{"function_name": "gcd", "args": {"a": "1071", "b": "462"}}'
threads.append(threading.Thread(target=invoker, args=(port, "/function/invoke", gcd)))
threads.append(threading.Thread(target=invoker, args=(provider_port, "/function/gcd", '{"a": "1071", "b": "462"}')))
for t in threads: t.daemon = True; t.start()

peak_rss = 0
while time.time() < deadline:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                peak_rss = max(peak_rss, int(line.split()[1]))
    time.sleep(0.5)
for t in threads: t.join(timeout=answer_deadline + 5)

latencies.sort()
ok = len(latencies)
print(f"hostile_check: {seconds} s, {stats['attack_connections']} attacking connections, "
      f"{stats['closed_by_engine']} cut off by the engine")
if ok:
    print(f"hostile_check: {ok} normal invokes answered 200, median {latencies[ok // 2] * 1000:.1f} ms, "
          f"max {latencies[-1] * 1000:.1f} ms (deadline {answer_deadline:.0f} s)")
print(f"hostile_check: peak RSS {peak_rss} KiB (bound {max_rss} KiB)")
bad = False
if failures:
    print(f"hostile_check: FAIL: {len(failures)} normal invokes failed or were late: {failures[:10]}")
    bad = True
if ok == 0:
    print("hostile_check: FAIL: no normal invoke was answered"); bad = True
if peak_rss > max_rss:
    print("hostile_check: FAIL: RSS over the bound"); bad = True
sys.exit(1 if bad else 0)
PY
kill -0 "$engine_pid" || { echo "hostile_check: the engine died" >&2; tail -20 "$work/engine.log" >&2; exit 1; }
