#!/usr/bin/env bash
# cross/image-test.sh: builds and pushes the multi-arch image (cross/image.sh)
# to a throw-away docker-registry, pulls it back with skopeo for every
# platform, and runs each extracted binary's --version (arm64, riscv64 and
# arm/v7 under qemu-user, amd64 natively), checking it is the build for
# that platform. Run by .ci/run after the cross builds (which take minutes,
# hence not a cargo test); fails loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
scripts/install-deps.sh skopeo docker-registry qemu-user python3
work=$(mktemp -d /tmp/wasmengine-image-test.XXXXXX)
on_exit_remove "$work"
address=127.0.0.1:$(free_port)
start_registry "$address" "$work/registry"
image=docker://$address/wasmengine:test
digest=$(cross/image.sh "$image" --dest-tls-verify=false)
echo "pushed $image as $digest"

skopeo inspect --raw --tls-verify=false "$image" >"$work/index.json"
python3 - "$work/index.json" <<'PY'
import json, sys
index = json.load(open(sys.argv[1]))
assert index["mediaType"] == "application/vnd.oci.image.index.v1+json", index["mediaType"]
platforms = sorted("/".join(filter(None, [m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant")]))
                   for m in index["manifests"])
wanted = ["linux/amd64", "linux/arm/v7", "linux/arm64", "linux/riscv64"]
assert platforms == wanted, f"the index holds {platforms}, not {wanted}"
print("index platforms:", ", ".join(platforms))
PY

failed=0
while read -r arch variant runner triple; do
  [[ $variant == - ]] && variant=""
  dir=$work/$arch$variant
  # By the index's digest: what a DaemonSet pinned to it would run.
  skopeo copy --quiet --src-tls-verify=false --override-os linux --override-arch "$arch" \
    ${variant:+--override-variant "$variant"} "docker://$address/wasmengine@$digest" "dir:$dir"
  layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][0]["digest"].split(":")[1])' "$dir/manifest.json")
  mkdir "$dir/rootfs"
  tar -xzf "$dir/$layer" -C "$dir/rootfs"
  binary=$dir/rootfs/usr/local/bin/wasm_engine
  # shellcheck disable=SC2086
  version=$(${runner/native/} "$binary" --version)
  echo "linux/$arch${variant:+/$variant}: $version"
  if [[ $version != *"$triple"* ]]; then
    echo "image-test: the linux/$arch image runs a binary for another target: $version" >&2
    failed=1
  fi
done <<'PLATFORMS'
arm64 - qemu-aarch64 aarch64-unknown-linux-musl
riscv64 - qemu-riscv64 riscv64gc-unknown-linux-gnu
arm v7 qemu-arm armv7-unknown-linux-gnueabihf
amd64 - native x86_64-unknown-linux-musl
PLATFORMS
exit "$failed"
