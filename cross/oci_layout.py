"""oci_layout.py DIR VERSION PLATFORM=BINARY...: writes an OCI image layout
in DIR holding one image index, tagged VERSION, with a FROM-scratch image
per PLATFORM (os/arch[/variant]) whose one layer is BINARY as
/usr/local/bin/wasm_engine. Reproducible: every timestamp is 0, owners
root, so the same binaries give the same digests. Used by cross/image.sh.
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def main(layout, version, pairs):
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data, media_type, **extra):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as blob:
            blob.write(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data), **extra}

    manifests = []
    for pair in pairs:
        platform, binary = pair.split("=", 1)
        os_name, architecture, *variant = platform.split("/")
        layer_tar = io.BytesIO()
        with tarfile.open(fileobj=layer_tar, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for directory in ["usr", "usr/local", "usr/local/bin"]:
                info = tarfile.TarInfo(directory)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                tar.addfile(info)
            info = tar.gettarinfo(binary, "usr/local/bin/wasm_engine")
            info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = 0o755, 0, 0, 0, "", ""
            with open(binary, "rb") as contents:
                tar.addfile(info, contents)
        uncompressed = layer_tar.getvalue()
        layer = put(gzip.compress(uncompressed, mtime=0), OCI_LAYER)
        config = {
            "architecture": architecture,
            "os": os_name,
            **({"variant": variant[0]} if variant else {}),
            "config": {
                "Entrypoint": ["/usr/local/bin/wasm_engine"],
                "Cmd": ["serve"],
                "ExposedPorts": {"10000/tcp": {}},
                "Env": ["PATH=/usr/local/bin"],
                "WorkingDir": "/",
                "Labels": {
                    "org.opencontainers.image.title": "wasmengine",
                    "org.opencontainers.image.version": version,
                },
            },
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(uncompressed).hexdigest()]},
        }
        config_descriptor = put(json.dumps(config, sort_keys=True).encode(), OCI_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor, "layers": [layer]}
        platform_field = {"architecture": architecture, "os": os_name, **({"variant": variant[0]} if variant else {})}
        manifests.append(put(json.dumps(manifest, sort_keys=True).encode(), OCI_MANIFEST, platform=platform_field))
        print(f"{platform}: {binary} ({os.path.getsize(binary)} bytes) as {manifests[-1]['digest']}")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    index_descriptor = put(json.dumps(index, sort_keys=True).encode(), OCI_INDEX,
                           annotations={"org.opencontainers.image.ref.name": version})
    with open(os.path.join(layout, "oci-layout"), "w") as out:
        json.dump({"imageLayoutVersion": "1.0.0"}, out)
    with open(os.path.join(layout, "index.json"), "w") as out:
        json.dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [index_descriptor]}, out)
    print(f"index {index_descriptor['digest']} tagged {version}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
