# lib.sh: shared shell helpers, sourced (never run) by the scripts under
# scripts/, benches/, tests/, cross/ and fuzz/:
#
#   source "$(dirname "$0")/../scripts/lib.sh"   # or a path from the repo root
#
# free_port                      prints a free TCP port on 127.0.0.1
# port_in_use PORT               whether something listens on 127.0.0.1:PORT
# on_exit_kill PID...            kills these processes when the script exits
# on_exit_remove PATH...         removes these files or directories on exit
#                                (kept, and named, when KEEP=1)
# wait_for SECONDS WHAT CMD...   runs CMD every 50 ms until it succeeds; after
#                                SECONDS prints "timed out waiting for WHAT"
#                                and returns 1
# start_registry ADDRESS DIR     a docker-registry on ADDRESS, storage and log
#                                under DIR, in the background (killed on exit);
#                                returns once /v2/ answers
# example_apps                   prints experiments/apps.txt without comments:
#                                "name target abi wasi_cap [calls]" per example
#
# Sourcing installs an EXIT trap that does the cleanup above; a script that
# needs its own trap calls lib_cleanup from it.
# shellcheck shell=bash

lib_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lib_pids=()
lib_paths=()

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

on_exit_kill() { lib_pids+=("$@"); }
on_exit_remove() { lib_paths+=("$@"); }

lib_cleanup() {
  local pid
  for pid in "${lib_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${lib_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ ${#lib_paths[@]} -gt 0 ]]; then
    if [[ -n ${KEEP:-} ]]; then
      echo "kept ${lib_paths[*]}" >&2
    else
      rm -rf "${lib_paths[@]}"
    fi
  fi
}
trap lib_cleanup EXIT

wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "timed out after ${seconds} s waiting for $what" >&2
      return 1
    fi
    sleep 0.05
  done
}

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
  on_exit_kill $!
  wait_for 30 "the registry at $address" curl -fs "http://$address/v2/" || {
    cat "$dir/registry.log" >&2
    return 1
  }
}

example_apps() {
  grep -v '^[[:space:]]*\(#\|$\)' "$lib_root/experiments/apps.txt"
}
