//! Images made by the real tools from Debian, not written by the tests:
//! `buildah` (`bud --platform wasi/wasm` of a `FROM scratch` Containerfile,
//! `from scratch` + `copy` + `config --os wasip1 --arch wasm`, `manifest
//! create/add` for an index with a `wasi/wasm` entry next to a `linux` one,
//! pushed as OCI or Docker schema 2, gzip or zstd) and `umoci insert` (whose
//! layer is a tar without its end blocks, copied with `skopeo copy`). Each
//! image goes to a real `docker-registry`, is deployed through the real
//! engine and checked by invoking the function.
//!
//! buildah runs as root without a daemon: `--storage-driver vfs` with its
//! storage in a temporary directory, and `BUILDAH_ISOLATION=chroot` (no
//! `RUN` step is used, so nothing is executed in a container).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::support::{Engine, Registry, fixture_path};

fn gcd_module() -> Vec<u8> {
    wat::parse_file(fixture_path("numeric")).expect("numeric fixture compiles")
}

fn string_module() -> Vec<u8> {
    wat::parse_file(fixture_path("string")).expect("string fixture compiles")
}

/// A buildah with its own storage (vfs) in a temporary directory.
struct Buildah {
    storage: tempfile::TempDir,
}

impl Buildah {
    fn new() -> Self {
        Self {
            storage: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// Runs `buildah ARGS` in `dir`; returns its stdout, trimmed.
    #[track_caller]
    fn run(&self, dir: &Path, args: &[&str]) -> String {
        let root = self.storage.path().join("root");
        let runroot = self.storage.path().join("runroot");
        let output = Command::new("buildah")
            .arg("--storage-driver=vfs")
            .arg(format!("--root={}", root.display()))
            .arg(format!("--runroot={}", runroot.display()))
            .args(args)
            .current_dir(dir)
            .env("BUILDAH_ISOLATION", "chroot")
            .output()
            .expect("buildah is not installed: run `make deps`");
        assert!(
            output.status.success(),
            "buildah {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

/// A build context: `files` written into a temporary directory.
fn context(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (name, contents) in files {
        std::fs::write(dir.path().join(name), contents).expect("writing the build context");
    }
    dir
}

/// Deploys `image` as `gcd` and checks that it answers `gcd(1071, 462)`.
#[track_caller]
fn assert_deploys_gcd(engine: &Engine, image: &str, what: &str) {
    let reply = engine.post(
        "/function/deploy",
        &json!({"function_name": "gcd", "function_image": image}).to_string(),
    );
    assert_eq!(reply.status, 200, "{what}: {}", reply.body);
    let output = engine.invoke("gcd", json!({"a": "1071", "b": "462"}));
    assert_eq!((output.status, output.message()), (200, "21"), "{what}");
    let deleted = engine.post("/function/delete", r#"{"function_name": "gcd"}"#);
    assert_eq!(deleted.status, 200, "{what}: {}", deleted.body);
}

/// `buildah bud --platform wasi/wasm` of `FROM scratch` + `COPY`, with a
/// second `.wasm` beside the entrypoint's, pushed in every format buildah
/// writes: OCI with gzip (its default), Docker schema 2, OCI with zstd
/// (buildah 1.28 ignores `--disable-compression` on a push to a registry,
/// so an uncompressed layer is left to tests/formats.rs).
#[test]
fn buildah_bud_images_deploy_and_run() {
    let engine = Engine::start();
    let buildah = Buildah::new();
    let build = context(&[
        ("gcd.wasm", &gcd_module()),
        ("other.wasm", &string_module()),
        (
            "Containerfile",
            b"FROM scratch\nCOPY gcd.wasm other.wasm format.txt /\nENTRYPOINT [\"/gcd.wasm\"]\n",
        ),
    ]);
    let mut pushes = vec![
        (
            "OCI, gzip (buildah's default)",
            vec![],
            wasm_engine::registry::OCI_LAYER_GZIP,
        ),
        (
            "Docker schema 2",
            vec!["--format=v2s2"],
            wasm_engine::registry::DOCKER_LAYER_GZIP,
        ),
    ];
    // The riscv64 build leaves the zstd decoder out (cross/targets.sh).
    if crate::support::engine_has_feature("zstd") {
        pushes.push((
            "OCI, zstd",
            vec!["--compression-format=zstd"],
            wasm_engine::registry::OCI_LAYER_ZSTD,
        ));
    }
    let registry = Registry::start_real();
    for (number, (what, options, layer_type)) in pushes.into_iter().enumerate() {
        // A layer of its own for each push: buildah (its blob info cache)
        // would otherwise reuse a layer it pushed in another compression.
        std::fs::write(build.path().join("format.txt"), what).expect("writing format.txt");
        let tag = format!("--tag=localhost/gcd:bud{number}");
        buildah.run(
            build.path(),
            &["bud", "--quiet", "--platform=wasi/wasm", &tag, "."],
        );
        let image = registry.image(&format!("bud{number}:v1"));
        let mut args = vec!["push", "--quiet", "--tls-verify=false"];
        args.extend(options);
        let destination = format!("docker://{image}");
        let source = format!("localhost/gcd:bud{number}");
        args.extend([source.as_str(), &destination]);
        buildah.run(build.path(), &args);
        let manifest = manifest_json(&registry, &format!("bud{number}:v1"));
        assert_eq!(manifest["layers"][0]["mediaType"], layer_type, "{what}");
        assert_deploys_gcd(&engine, &image, what);
    }
}

/// The working-container way: `buildah from scratch`, `copy`, `config --os
/// wasip1 --arch wasm`, `commit`, `push`.
#[test]
fn buildah_from_scratch_with_a_wasip1_config_deploys_and_runs() {
    let registry = Registry::start_real();
    let engine = Engine::start();
    let buildah = Buildah::new();
    let build = context(&[("fn.wasm", &gcd_module())]);
    let container = buildah.run(build.path(), &["from", "scratch"]);
    buildah.run(build.path(), &["copy", &container, "fn.wasm", "/app/"]);
    buildah.run(
        build.path(),
        &[
            "config",
            "--os=wasip1",
            "--arch=wasm",
            "--entrypoint=[\"/app/fn.wasm\"]",
            &container,
        ],
    );
    buildah.run(
        build.path(),
        &["commit", "--quiet", &container, "localhost/gcd:wasip1"],
    );
    let inspected: serde_json::Value = serde_json::from_str(&buildah.run(
        build.path(),
        &["inspect", "--type=image", "localhost/gcd:wasip1"],
    ))
    .expect("buildah inspect prints JSON");
    assert_eq!(
        (
            &inspected["OCIv1"]["os"],
            &inspected["OCIv1"]["architecture"]
        ),
        (&json!("wasip1"), &json!("wasm"))
    );
    let image = registry.image("wasip1:v1");
    buildah.run(
        build.path(),
        &[
            "push",
            "--quiet",
            "--tls-verify=false",
            "localhost/gcd:wasip1",
            &format!("docker://{image}"),
        ],
    );
    assert_deploys_gcd(&engine, &image, "buildah from scratch + config");
}

/// `buildah manifest create/add` of a `wasi/wasm` image and a `linux/amd64`
/// one (holding another module), `manifest push --all`: the engine picks
/// the wasm entry, whichever order the index lists them in.
#[test]
fn a_buildah_manifest_list_with_wasi_and_linux_entries_runs_the_wasm_one() {
    let registry = Registry::start_real();
    let engine = Engine::start();
    let buildah = Buildah::new();
    let build = context(&[
        ("gcd.wasm", &gcd_module()),
        ("string.wasm", &string_module()),
        ("Containerfile.wasi", b"FROM scratch\nCOPY gcd.wasm /\n"),
        ("Containerfile.linux", b"FROM scratch\nCOPY string.wasm /\n"),
    ]);
    for (platform, file, tag) in [
        ("wasi/wasm", "Containerfile.wasi", "localhost/gcd:wasi"),
        ("linux/amd64", "Containerfile.linux", "localhost/gcd:linux"),
    ] {
        buildah.run(
            build.path(),
            &[
                "bud",
                "--quiet",
                &format!("--platform={platform}"),
                &format!("--file={file}"),
                &format!("--tag={tag}"),
                ".",
            ],
        );
    }
    for (list, order) in [
        ("localhost/gcd:wasi-first", ["wasi", "linux"]),
        ("localhost/gcd:linux-first", ["linux", "wasi"]),
    ] {
        buildah.run(build.path(), &["manifest", "create", list]);
        for tag in order {
            buildah.run(
                build.path(),
                &["manifest", "add", list, &format!("localhost/gcd:{tag}")],
            );
        }
        let image = registry.image(&format!("list:{}", order[0]));
        buildah.run(
            build.path(),
            &[
                "manifest",
                "push",
                "--quiet",
                "--all",
                "--tls-verify=false",
                list,
                &format!("docker://{image}"),
            ],
        );
        // It really is an index with both platforms.
        let index = manifest_json(&registry, &format!("list:{}", order[0]));
        let platforms: Vec<String> = index["manifests"]
            .as_array()
            .expect("an index lists manifests")
            .iter()
            .map(|entry| {
                format!(
                    "{}/{}",
                    entry["platform"]["os"].as_str().unwrap_or("?"),
                    entry["platform"]["architecture"].as_str().unwrap_or("?")
                )
            })
            .collect();
        assert_eq!(
            platforms,
            order.map(|tag| if tag == "wasi" {
                "wasi/wasm"
            } else {
                "linux/amd64"
            })
        );
        assert_deploys_gcd(&engine, &image, &format!("index {order:?}"));
    }
}

/// The manifest or index `repository:tag` of `registry` as JSON (every type
/// accepted: distribution answers a client that does not accept lists with
/// the `linux/amd64` entry's manifest).
fn manifest_json(registry: &Registry, repository_and_tag: &str) -> serde_json::Value {
    let (repository, tag) = repository_and_tag.split_once(':').expect("repo:tag");
    let mut response = crate::support::http_agent()
        .get(format!(
            "http://{}/v2/{repository}/manifests/{tag}",
            registry.address
        ))
        .header(
            "Accept",
            [
                wasm_engine::registry::OCI_INDEX,
                wasm_engine::registry::DOCKER_MANIFEST_LIST,
                wasm_engine::registry::OCI_MANIFEST,
                wasm_engine::registry::DOCKER_MANIFEST,
            ]
            .join(", "),
        )
        .call()
        .expect("fetching a manifest");
    assert_eq!(response.status(), 200);
    serde_json::from_slice(&response.body_mut().read_to_vec().expect("manifest body"))
        .expect("the manifest is JSON")
}

/// `umoci insert` writes a layer whose tar stops right after the file's
/// bytes: no padding to a 512-byte record and no end blocks. The image
/// (`umoci config --os wasip1 --architecture wasm`) is copied to the
/// registry with `skopeo copy` and must deploy.
#[test]
fn a_umoci_insert_layer_without_tar_end_blocks_deploys_and_runs() {
    let registry = Registry::start_real();
    let engine = Engine::start();
    let work = context(&[("fn.wasm", &gcd_module())]);
    let layout = work.path().join("layout");
    let image_in_layout = format!("{}:v1", layout.display());
    let umoci = |args: &[&str]| {
        let output = Command::new("umoci")
            .args(args)
            .current_dir(work.path())
            .output()
            .expect("umoci is not installed: run `make deps`");
        assert!(
            output.status.success(),
            "umoci {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    umoci(&["init", "--layout", layout.to_str().expect("UTF-8 path")]);
    umoci(&["new", "--image", &image_in_layout]);
    umoci(&["insert", "--image", &image_in_layout, "fn.wasm", "/fn.wasm"]);
    umoci(&[
        "config",
        "--image",
        &image_in_layout,
        "--os=wasip1",
        "--architecture=wasm",
    ]);
    let layer = only_layer(&layout);
    let tar = {
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&layer[..]), &mut tar)
            .expect("umoci's layer is gzip");
        tar
    };
    // What makes this case: the tar ends inside its last record.
    assert!(
        tar.len() % 512 != 0 || !tar.ends_with(&[0; 1024]),
        "umoci wrote a complete tar ({} bytes): this test no longer covers a truncated one",
        tar.len()
    );
    let image = registry.image("umoci:v1");
    let output = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{image_in_layout}"))
        .arg(format!("docker://{image}"))
        .output()
        .expect("skopeo is not installed: run `make deps`");
    assert!(
        output.status.success(),
        "skopeo copy failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_deploys_gcd(&engine, &image, "umoci insert");
}

/// The one layer of the one image of the OCI layout at `layout`.
fn only_layer(layout: &Path) -> Vec<u8> {
    let blob = |digest: &str| -> PathBuf {
        layout
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").expect("a sha256 digest"))
    };
    let read_json = |path: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).expect("reading the layout"))
            .expect("layout JSON")
    };
    let index = read_json(layout.join("index.json"));
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("index.json names a manifest");
    let manifest = read_json(blob(manifest_digest));
    let layers = manifest["layers"]
        .as_array()
        .expect("a manifest has layers");
    assert_eq!(layers.len(), 1, "{manifest}");
    std::fs::read(blob(layers[0]["digest"].as_str().expect("a layer digest")))
        .expect("reading the layer")
}
