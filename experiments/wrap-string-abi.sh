#!/usr/bin/env bash
# wrap-string-abi.sh IN.wasm OUT.wasm NAME
#
# Stable Rust cannot export a function with two results, so a string-ABI
# example exports NAME_impl(ptr, len) -> i64 (output pointer in the low half,
# length in the high half). This adds the export the engine calls,
# NAME(ptr, len) -> (ptr, len), and drops the NAME_impl export. It round-trips
# the module through wabt's wasm2wat/wat2wasm (Debian package `wabt`).
set -euo pipefail
in=$1 out=$2 name=$3
impl="${name//-/_}_impl"
wat=$(wasm2wat --enable-all "$in")
target=$(grep -o "(export \"$impl\" (func [^)]*))" <<<"$wat" | sed -E 's/.*\(func ([^)]*)\)\)/\1/' || true)
if [[ -z "$target" ]]; then
  echo "wrap-string-abi: $in exports no $impl" >&2
  exit 1
fi
{
  # Everything but the export of NAME_impl and the module's closing paren.
  grep -v "(export \"$impl\" " <<<"$wat" | sed '$ s/)$//'
  cat <<WAT
  (func \$string_abi_entry (export "$name") (param i32 i32) (result i32 i32)
    (local \$packed i64)
    (local.set \$packed (call $target (local.get 0) (local.get 1)))
    (i32.wrap_i64 (local.get \$packed))
    (i32.wrap_i64 (i64.shr_u (local.get \$packed) (i64.const 32)))))
WAT
} >"$out.wat"
wat2wasm --enable-all "$out.wat" -o "$out"
rm -f "$out.wat"
