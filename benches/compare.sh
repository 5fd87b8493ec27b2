#!/usr/bin/env bash
# compare.sh: interpreter, JIT and native on real third-party programs (a
# benchmark, not a test; docs/performance.md, "Interpreter, JIT and native
# on third-party programs", shows a run).
#
# The programs are those of tests/thirdparty.rs, built from crates.io
# sources at pinned versions by experiments/thirdparty/build.sh (run here;
# it skips what is up to date): pulldown-cmark, jsonxf and htmlq (Rust), and
# hoedown (C), each as a wasm32-wasip1 command and natively. Each gets a
# generated input of each size in SIZES (deterministic; benches/compare.py
# makes them) and is run by:
#
#   native    the native build, one process per call
#   engine    this engine's release build, the modules pushed to a loopback
#             docker-registry and deployed from it over HTTP, each input
#             sent as the body of the provider route POST /function/NAME
#   wasmtime  wasmtime's PyPI package (a JIT), in the measuring process
#   wasm3     the wasm3 interpreter (wasm3 0.5.2's C source and its WASI
#             layer as bundled in the `wasm3x-sys` crate from crates.io),
#             through the small runner in benches/wasm3_runner
#
# and prints markdown tables: per-call time (median of ROUNDS calls; wall
# clock, and CPU time, the steadier on a shared machine) and first-call
# time, with the ratios, after a header naming the machine.
#
# Optional tools are installed here, not by `make test`: a Python venv with
# wasmtime under target/compare/venv (pip, from PyPI) and the wasm3 runner
# under target/compare/wasm3_runner (cargo, versions pinned by
# benches/wasm3_runner/Cargo.lock). A runner that cannot be installed is
# left out and the header says so.
#
# Everything runs under `nice -n 15` (the development machine is shared):
# compare the runners within one run, not absolute times across runs.
#
# Environment: ROUNDS (default 9), SIZES (bytes, default "1024 32768
# 1048576"), WASMTIME_VERSION (default 51.0.0), ENGINE (the engine binary to
# measure instead of building the release one), KEEP=1 (keep the work
# directory: inputs, outputs, logs).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [[ ${COMPARE_NICE:-} != done ]]; then
  export COMPARE_NICE=done
  exec nice -n 15 "$root/benches/compare.sh" "$@"
fi

export ROUNDS=${ROUNDS:-9}
export SIZES=${SIZES:-1024 32768 1048576}
wasmtime_version=${WASMTIME_VERSION:-51.0.0}
work=$(mktemp -d /tmp/wasmengine-compare.XXXXXX)
source scripts/lib.sh
on_exit_remove "$work"

for tool in docker-registry curl python3 cargo; do
  command -v "$tool" >/dev/null || { echo "compare.sh: $tool is missing (make deps installs it)" >&2; exit 1; }
done

echo "== building the release engine and the third-party programs" >&2
[[ -n ${ENGINE:-} ]] || cargo build --release --quiet --bin wasm_engine
experiments/thirdparty/build.sh >&2
programs=$root/experiments/thirdparty/build

echo "== installing wasmtime $wasmtime_version (PyPI) and the wasm3 runner (crates.io)" >&2
venv=$root/target/compare/venv
installed_wasmtime() { "$venv/bin/python" -m pip show wasmtime 2>/dev/null | sed -n 's/^Version: //p'; }
if [[ ! -x $venv/bin/python || $(installed_wasmtime) != "$wasmtime_version" ]]; then
  rm -rf "$venv"
  { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet "wasmtime==$wasmtime_version"; } >&2 || true
fi
if [[ -x $venv/bin/python && $(installed_wasmtime) == "$wasmtime_version" ]] &&
  "$venv/bin/python" -c "import wasmtime" 2>/dev/null; then
  python=$venv/bin/python
  wasmtime_status="wasmtime $wasmtime_version (PyPI package \`wasmtime\`, Cranelift JIT)"
else
  python=python3
  wasmtime_status="wasmtime: not available (pip could not install wasmtime==$wasmtime_version into a venv)"
fi

wasm3_target=$root/target/compare/wasm3_runner
export WASM3_RUNNER=$wasm3_target/release/wasm3_runner
wasm3_status="wasm3 0.5.2 (its C source as bundled in the crate \`wasm3x-sys\` 0.1.0), through benches/wasm3_runner"
if ! CARGO_TARGET_DIR=$wasm3_target cargo build --release --quiet --locked \
  --manifest-path benches/wasm3_runner/Cargo.toml >"$work/wasm3-build.log" 2>&1; then
  tail -n 20 "$work/wasm3-build.log" >&2
  wasm3_status="wasm3: not available (benches/wasm3_runner did not build: it needs clang and libclang)"
  WASM3_RUNNER=
fi

echo "== starting a registry and the engine" >&2
engine=${ENGINE:-$root/target/release/wasm_engine}
registry=127.0.0.1:$(free_port)
start_registry "$registry" "$work/registry"
for program in pulldown-cmark hoedown htmlq jsonxf; do
  "$engine" push "$programs/$program.wasm" "$registry/thirdparty/$program:v1" >/dev/null
done
engine_port=$(free_port)
provider_port=$(free_port)
# Limits wide enough for 1 MB inputs and their outputs; nothing else changed.
RUST_LOG=off "$engine" --listen "127.0.0.1:$engine_port" --provider-listen "127.0.0.1:$provider_port" \
  --data-dir "$work/data" --max-body-bytes 4194304 --max-output-bytes 16777216 \
  >"$work/engine.log" 2>&1 &
export ENGINE_PID=$!
on_exit_kill "$ENGINE_PID"
export ENGINE_URL=http://127.0.0.1:$engine_port PROVIDER_URL=http://127.0.0.1:$provider_port
wait_for 30 "the engine" curl -fs "$ENGINE_URL/function/list"

mkdir -p "$work/io"
export COMPARE_WORK=$work/io COMPARE_PROGRAMS=$programs REGISTRY=$registry

{
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores," \
    "$(free -g | awk '/^Mem:/ { print $2 }') GiB; load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); engine $(git rev-parse --short HEAD)" \
    "($(rustc --version | cut -d' ' -f1-2)); everything at niceness $(nice)"
  echo "Runners: native; this engine over HTTP; $wasmtime_status; $wasm3_status"
  echo "Programs: $(for p in pulldown-cmark hoedown htmlq jsonxf; do printf '%s (%s), ' "$(cut -d' ' -f2-3 <"$programs/$p.version")" "$(stat -c %s "$programs/$p.wasm") B wasm"; done | sed 's/, $//')"
  echo "ROUNDS=$ROUNDS SIZES=\"$SIZES\""
} >"$work/header.txt"
cat "$work/header.txt"

"$python" benches/compare.py
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
