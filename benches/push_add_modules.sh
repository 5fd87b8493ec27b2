#!/usr/bin/env bash
# push_add_modules.sh ENGINE REGISTRY DIR COUNT: writes COUNT one-function
# modules into DIR (`add_NNNNN(i32, i32) -> i32`, 60 bytes each, NNNNN from
# 00001) and pushes each with ENGINE as its own image REGISTRY/add-NNNNN:v1,
# 16 at a time. Used by benches/scale.sh and benches/restart.sh.
set -euo pipefail
engine=$1 registry=$2 dir=$3 count=$4
python3 - "$dir" "$count" <<'PY'
import os, sys
out, count = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
def section(id, body): return bytes([id, len(body)]) + body
for i in range(1, count + 1):
    name = f"add_{i:05d}".encode()
    wasm = (b"\0asm\1\0\0\0"
        + section(1, bytes([1, 0x60, 2, 0x7f, 0x7f, 1, 0x7f]))
        + section(3, bytes([1, 0]))
        + section(7, bytes([1, len(name)]) + name + bytes([0, 0]))
        + section(10, bytes([1, 7, 0, 0x20, 0, 0x20, 1, 0x6a, 0x0b])))
    open(f"{out}/add_{i:05d}.wasm", "wb").write(wasm)
PY
pushes=()
for i in $(seq -f '%05g' "$count"); do
  "$engine" push "$dir/add_$i.wasm" "$registry/add-$i:v1" >/dev/null 2>&1 &
  pushes+=($!)
  if ((${#pushes[@]} == 16)); then
    wait "${pushes[@]}"
    pushes=()
  fi
done
((${#pushes[@]} == 0)) || wait "${pushes[@]}"
