#!/usr/bin/env bash
# cross/kubernetes/check.sh [WASM_ENGINE_BINARY]: checks the manifests
# offline: kubectl decodes every object (client side, no cluster), and
# check.py checks that they agree with each other and with the engine (names,
# labels and selectors, ports, probe paths, the ConfigMap key and the Secret
# names the DaemonSet mounts, the functions file's schema, the flags against
# the binary's --help). Exits non-zero with the reasons on a mismatch.
set -euo pipefail
cd "$(dirname "$0")"
binary=${1:-../../target/debug/wasm_engine}
command -v kubectl >/dev/null || { echo "check.sh: kubectl is missing (Debian: kubernetes-client; make deps)" >&2; exit 1; }
python3 -c 'import yaml' 2>/dev/null || { echo "check.sh: python3-yaml is missing (make deps)" >&2; exit 1; }
# `--local` decodes with kubectl's built-in types and never contacts a
# server (create/apply --dry-run=client still need the API's discovery).
rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
for manifest in *.yaml; do
  kubectl annotate --local -f "$manifest" wasmengine.check/decoded=true -o yaml >>"$rendered" \
    || { echo "check.sh: kubectl cannot decode $manifest" >&2; exit 1; }
  echo "---" >>"$rendered"
done
help=$("$binary" --help)
python3 check.py "$rendered" <<<"$help"
echo "cross/kubernetes: $(ls ./*.yaml | wc -l) manifests decoded by kubectl and consistent" >&2
