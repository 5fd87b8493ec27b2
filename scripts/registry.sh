# registry.sh: sourced by the demo and benchmark scripts.
# start_registry ADDRESS DIR: serves a docker-registry on ADDRESS with its
# storage and log under DIR, in the background; appends its pid to the
# caller's `pids` array and returns once /v2/ answers (or fails, showing the log).
# shellcheck shell=bash
start_registry() {
  local address=$1 dir=$2
  mkdir -p "$dir"
  cat >"$dir/registry.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $dir/storage}}
http: {addr: $address}
YAML
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -fs "http://$address/v2/" >/dev/null && return 0; sleep 0.1; done
  cat "$dir/registry.log" >&2
  return 1
}
