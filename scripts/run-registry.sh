#!/usr/bin/env bash
# run-registry.sh [ADDRESS]: a throw-away container registry for trying the
# engine (`make registry`). Serves Debian's docker-registry on ADDRESS
# (default 127.0.0.1:5000, loopback only, no authentication) with its storage
# in a temporary directory, in the foreground; Ctrl-C stops it and deletes
# the storage.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
address=${1:-127.0.0.1:5000}
command -v docker-registry >/dev/null || {
  echo "run-registry: docker-registry not found; install Debian's docker-registry package (make deps does)" >&2
  exit 1
}
port=${address##*:}
if port_in_use "$port"; then
  echo "run-registry: port $port is in use (Debian's own docker-registry service listens on :5000;" >&2
  echo "  'systemctl disable --now docker-registry' stops it), or pick another: make registry REGISTRY=127.0.0.1:5001" >&2
  exit 1
fi
dir=$(mktemp -d /tmp/wasmengine-registry.XXXXXX)
on_exit_remove "$dir"
# Warnings and errors only, no access log, and a secret of its own (else it
# warns that it made one). A push's routine existence checks (a HEAD of each
# blob before uploading it) are answered 404 and logged as errors ("blob
# unknown") whatever the level: those lines are dropped, the rest is shown.
# README.md shows this configuration; tests/newcomer.rs checks both.
secret=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
cat >"$dir/config.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $dir/storage}}
http: {addr: $address, secret: $secret}
YAML
echo "registry: http://$address (storage in $dir, deleted on exit); Ctrl-C stops it"
# In the foreground, so Ctrl-C reaches it; the trap then removes the storage.
docker-registry serve "$dir/config.yml" 2>&1 | grep --line-buffered -v 'err.code="blob unknown"' || true
