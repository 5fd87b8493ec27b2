#!/usr/bin/env bash
# demo.sh: the README walkthrough, for real. Starts a registry on loopback,
# builds the engine and the two example functions it pushes, starts the
# engine, then deploys, lists, queries, invokes and deletes over the REST API,
# printing each request and response. Cleans up on exit.
#
# Environment: REGISTRY_PORT (default 5000), ENGINE_PORT (default 10000).
set -euo pipefail
cd "$(dirname "$0")/.."

registry_port=${REGISTRY_PORT:-5000}
engine_port=${ENGINE_PORT:-10000}
registry=127.0.0.1:$registry_port
engine_url=http://127.0.0.1:$engine_port
work=/tmp/wasmengine-demo
source scripts/lib.sh
on_exit_remove "$work"

for port in "$registry_port" "$engine_port"; do
  ! port_in_use "$port" || { echo "demo: port $port is in use; set REGISTRY_PORT or ENGINE_PORT" >&2; exit 1; }
done

echo "== building the engine and the two example functions it deploys (the first build takes a few minutes)"
cargo build --release
scripts/build-demo-apps.sh

rm -rf "$work" && mkdir -p "$work"
start_registry "$registry" "$work/registry"

echo
echo "== pushing the functions to the registry at $registry"
app=experiments/application
echo "\$ wasm_engine push authentication.wasm $registry/authentication-wasm:v4"
target/release/wasm_engine push $app/authentication/target/wasm32-unknown-unknown/release/authentication.wasm "$registry/authentication-wasm:v4"
echo "\$ wasm_engine push hello.wasm $registry/hello-wasm:v2"
target/release/wasm_engine push $app/hello/target/wasm32-wasip1/release/hello.wasm "$registry/hello-wasm:v2"

echo
echo "== starting the engine"
target/release/wasm_engine --listen "127.0.0.1:$engine_port" --data-dir "$work/data" >"$work/engine.log" 2>&1 &
on_exit_kill $!
wait_for 10 "the engine to listen" grep -q "listening on" "$work/engine.log"
cat "$work/engine.log" | sed 's/^\[[^]]*\] */  /'

call() { # METHOD PATH [BODY]
  echo
  local answer
  if [[ $# -eq 3 ]]; then
    echo "\$ curl -X $1 $engine_url$2 -H 'Content-Type: application/json' -d '$3'"
    answer=$(curl -s -X "$1" "$engine_url$2" -H 'Content-Type: application/json' -d "$3"; printf x)
  else
    echo "\$ curl $engine_url$2"
    answer=$(curl -s "$engine_url$2"; printf x)
  fi
  answer=${answer%x}
  # Text answers end with a newline, invoke's (the function's output) do not.
  printf '%s' "$answer"
  [[ $answer == *$'\n' ]] || echo
}

call POST /function/deploy "{\"function_name\": \"authentication\", \"function_image\": \"$registry/authentication-wasm:v4\", \"wasi_cap\": false}"
call POST /function/deploy "{\"function_name\": \"hello\", \"function_image\": \"$registry/hello-wasm:v2\", \"wasi_cap\": true}"
call GET /function/list
call POST /function/query '{"function_name": "authentication"}'
call POST /function/invoke '{"function_name": "authentication", "args": {"arg_uri": "yes", "arg_body": "yes", "arg_secret": "12345"}}'
call POST /function/invoke '{"function_name": "hello", "args": {"name": "edge"}}'
call POST /function/delete '{"function_name": "hello"}'
call GET /function/list
