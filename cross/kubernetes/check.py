"""Structural checks of the Kubernetes manifests (run by check.sh).

argv[1]: the objects as kubectl decoded them (YAML documents); stdin: the
engine's --help. Prints every problem and exits 1 if there is any.
"""
import json
import re
import sys

import yaml

problems = []


def check(condition, message):
    if not condition:
        problems.append(message)


objects = [o for o in yaml.safe_load_all(open(sys.argv[1])) if o]
help_text = sys.stdin.read()
by_kind = {}
for o in objects:
    by_kind.setdefault(o["kind"], []).append(o)
    check(o["metadata"].get("namespace", "wasmengine") == "wasmengine" or o["kind"] == "Namespace",
          f"{o['kind']} {o['metadata']['name']} is not in namespace wasmengine")

(namespace,) = by_kind["Namespace"]
check(namespace["metadata"]["name"] == "wasmengine", "the namespace is not wasmengine")
(daemonset,) = by_kind["DaemonSet"]
(service,) = by_kind["Service"]
configmaps = {o["metadata"]["name"]: o for o in by_kind["ConfigMap"]}
secrets = {o["metadata"]["name"]: o for o in by_kind["Secret"]}

spec = daemonset["spec"]
template = spec["template"]
selector = spec["selector"]["matchLabels"]
labels = template["metadata"]["labels"]
check(all(labels.get(k) == v for k, v in selector.items()),
      f"the DaemonSet selector {selector} does not match its pod labels {labels}")
check(all(labels.get(k) == v for k, v in service["spec"]["selector"].items()),
      f"the Service selector {service['spec']['selector']} does not select the pods {labels}")

pod = template["spec"]
check(pod.get("nodeSelector", {}).get("node-role.kubernetes.io/edge") == "",
      "the pods are not placed on KubeEdge edge nodes (nodeSelector node-role.kubernetes.io/edge)")
check(any(t.get("key") == "node-role.kubernetes.io/edge" for t in pod.get("tolerations", [])),
      "the pods do not tolerate the edge nodes' taint")
(container,) = pod["containers"]
ports = {p["name"]: p["containerPort"] for p in container["ports"]}
args = container["args"]
check(args[0] == "serve", "the container does not run `serve`")
flags = dict(a.split("=", 1) if "=" in a else (a, None) for a in args[1:])

# Flags exist in the binary.
for flag in flags:
    if not re.search(rf"^\s+{re.escape(flag)}\b", help_text, re.M):
        problems.append(f"the DaemonSet passes {flag}, which wasm_engine --help does not list")

# Ports: the flags, the container ports, the probes, the Service, the scrape annotation.
listen_port = int(flags["--listen"].rsplit(":", 1)[1])
check(ports.get("http") == listen_port, f"containerPort http {ports.get('http')} is not --listen's {listen_port}")
provider_port = int(flags["--provider-listen"].rsplit(":", 1)[1])
check(ports.get("provider") == provider_port,
      f"containerPort provider {ports.get('provider')} is not --provider-listen's {provider_port}")
for probe, path in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")]:
    get = container.get(probe, {}).get("httpGet", {})
    check(get.get("path") == path, f"{probe} does not ask {path}")
    check(get.get("port") in ("http", listen_port), f"{probe} does not ask the engine's port")
annotations = template["metadata"].get("annotations", {})
check(annotations.get("prometheus.io/port") == str(listen_port), "the scrape annotation names another port")
check(annotations.get("prometheus.io/path") == "/metrics", "the scrape annotation names another path")
(service_port,) = service["spec"]["ports"]
check(service_port["targetPort"] in ("provider", provider_port), "the Service does not target the provider port")
check(service_port["port"] == provider_port, "the Service's port is not the provider's")

# Resources.
resources = container.get("resources", {})
check("memory" in resources.get("requests", {}) and "cpu" in resources.get("requests", {}),
      "the container requests no memory or CPU")
check("memory" in resources.get("limits", {}), "the container has no memory limit")

# Volumes: mounted paths match the flags; the ConfigMap key and Secret names exist.
volumes = {v["name"]: v for v in pod["volumes"]}
mounts = {m["mountPath"]: m for m in container["volumeMounts"]}


def mounted(path_flag):
    """The mount and volume holding the file or directory a flag names."""
    path = flags[path_flag]
    for mount_path, mount in mounts.items():
        if path == mount_path or path.startswith(mount_path.rstrip("/") + "/"):
            return mount, volumes[mount["name"]], path[len(mount_path):].lstrip("/")
    problems.append(f"{path_flag} {path} is on no volume")
    return None, None, None


mount, volume, _ = mounted("--data-dir")
if volume:
    check("hostPath" in volume, "the data directory is not a hostPath")
mount, volume, key = mounted("--functions-file")
if volume:
    check("subPath" not in mount, "the functions file is mounted with subPath: the kubelet would never update it")
    name = volume.get("configMap", {}).get("name")
    check(name in configmaps, f"the functions volume names ConfigMap {name}, which is not defined")
    data = configmaps.get(name, {}).get("data", {})
    check(key in data, f"ConfigMap {name} has no key {key} (it has {sorted(data)})")
    if key in data:
        entries = json.loads(data[key])
        allowed = {"name", "image", "wasi_cap", "timeout_ms", "memory_limit_mb", "fuel"}
        check(isinstance(entries, list), "the functions file is not a JSON array")
        for entry in entries:
            check({"name", "image"} <= set(entry) <= allowed, f"functions file entry {entry} has other fields than {sorted(allowed)}")
            check("@sha256:" in entry.get("image", ""), f"functions file entry {entry.get('name')} is not pinned by digest")
for flag, wanted_keys in [("--admin-token-file", None), ("--provider-secrets-dir", {"basic-auth-user", "basic-auth-password"})]:
    mount, volume, key = mounted(flag)
    if not volume:
        continue
    name = volume.get("secret", {}).get("secretName")
    check(name in secrets, f"{flag} is on Secret {name}, which is not defined")
    keys = set(secrets.get(name, {}).get("stringData", {})) | set(secrets.get(name, {}).get("data", {}))
    for wanted in wanted_keys or {key}:
        check(wanted in keys, f"Secret {name} has no key {wanted} that {flag} needs")

if problems:
    print("cross/kubernetes: the manifests disagree:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    sys.exit(1)
