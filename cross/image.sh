#!/usr/bin/env bash
# cross/image.sh DESTINATION [SKOPEO_COPY_FLAG...]: the engine as one
# multi-arch OCI image, pushed to DESTINATION with skopeo; prints the image
# index's digest (pin that in the DaemonSet; docs/fleet.md).
#
#   cross/image.sh docker://registry.example.com/wasmengine:0.1.0
#   cross/image.sh docker://127.0.0.1:5000/wasmengine:test --dest-tls-verify=false
#
# Each platform's image is FROM scratch with the static binary as
# /usr/local/bin/wasm_engine (entrypoint, `serve` by default, port 10000):
#   linux/arm64 (aarch64-unknown-linux-musl), linux/riscv64
#   (riscv64gc-unknown-linux-gnu), linux/arm/v7 (armv7-unknown-linux-gnueabihf),
#   linux/amd64 (x86_64-unknown-linux-musl).
# Each binary is (re)built with cross/build first, a no-op when it is up to
# date, so the image never packs a stale one; IMAGE_NO_BUILD=1 packs
# target/<triple>/release/wasm_engine as it is.
# No container daemon: cross/oci_layout.py writes an OCI image layout
# (reproducible: fixed timestamps and owners, so the same binaries give the
# same digests) and skopeo pushes it with its index.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
destination=${1:?usage: cross/image.sh docker://REGISTRY/REPOSITORY:TAG [SKOPEO_COPY_FLAG...]}
shift
scripts/install-deps.sh skopeo python3
platforms=(
  "aarch64-unknown-linux-musl linux/arm64"
  "riscv64gc-unknown-linux-gnu linux/riscv64"
  "armv7-unknown-linux-gnueabihf linux/arm/v7"
  "x86_64-unknown-linux-musl linux/amd64"
)
binaries=()
for line in "${platforms[@]}"; do
  read -r target platform <<<"$line"
  binary=target/$target/release/wasm_engine
  if [[ -z ${IMAGE_NO_BUILD:-} || ! -x $binary ]]; then cross/build "$target" >&2; fi
  binaries+=("$platform=$binary")
done
layout=$(mktemp -d /tmp/wasmengine-image.XXXXXX)
on_exit_remove "$layout"
version=$(target/x86_64-unknown-linux-musl/release/wasm_engine --version | awk 'NR == 1 { print $2 }')
python3 cross/oci_layout.py "$layout" "$version" "${binaries[@]}" >&2
digest_file=$layout.digest
on_exit_remove "$digest_file"
skopeo copy --all --digestfile "$digest_file" "$@" "oci:$layout:$version" "$destination" >&2
echo "pushed $destination ($(wc -w <<<"${binaries[*]}") platforms):" >&2
cat "$digest_file"
echo
