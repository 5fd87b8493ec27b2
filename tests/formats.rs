//! Every way wasm images are packaged today (issue 13's table), each written
//! as an OCI layout, copied into a real registry with `skopeo copy
//! --preserve-digests`, deployed, and checked by invoking the function.

use serde_json::{Value, json};
use wasm_engine::registry::{
    DOCKER_CONFIG, LayerFile, OCI_CONFIG, OCI_EMPTY, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD,
    WASM_CONFIG_V0, WASM_CONFIG_V1, build_gzip_tar,
};

use crate::support::oci::{Blob, OciImage, push_image, push_index};
use crate::support::{Engine, Registry, assert_error, fixture_path};

fn gcd_module() -> Vec<u8> {
    wat::parse_file(fixture_path("numeric")).expect("numeric fixture compiles")
}

fn string_module() -> Vec<u8> {
    wat::parse_file(fixture_path("string")).expect("string fixture compiles")
}

fn files(entries: &[(&str, &[u8])]) -> Vec<LayerFile> {
    entries
        .iter()
        .map(|(path, contents)| LayerFile {
            path: (*path).to_owned(),
            contents: contents.to_vec(),
        })
        .collect()
}

fn gzip_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    build_gzip_tar(&files(entries)).expect("building a layer")
}

fn plain_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&gzip_tar(entries)[..]),
        &mut tar,
    )
    .expect("gunzip");
    tar
}

fn image_config(os: &str, entrypoint: Option<&str>) -> Blob {
    let mut config = json!({
        "architecture": "wasm",
        "os": os,
        "rootfs": {"type": "layers", "diff_ids": []},
        "config": {},
    });
    if let Some(entrypoint) = entrypoint {
        config["config"]["Entrypoint"] = json!([entrypoint]);
    }
    Blob::json(OCI_CONFIG, &config)
}

fn wasm_platform(os: &str) -> Value {
    json!({"os": os, "architecture": "wasm"})
}

/// What a deploy of a case should give.
enum Expect {
    /// Deploys; `gcd(1071, 462)` answers 21.
    Gcd,
    /// Refused with this status and message fragment.
    Refused(u16, &'static str),
}

/// How a case is pushed.
enum Shape {
    Image(OciImage),
    Index(Vec<(Value, OciImage)>),
}

fn cases() -> Vec<(&'static str, Shape, Expect)> {
    let gcd = gcd_module;
    let oras = {
        let mut image = OciImage::new(
            Blob::new(OCI_EMPTY, b"{}".to_vec()),
            vec![Blob::new(OCI_LAYER_TAR, gcd())],
        );
        image.artifact_type = Some("application/vnd.unknown.artifact.v1".into());
        image
    };
    let buildx_entry = OciImage::new(
        Blob::json(
            OCI_CONFIG,
            &json!({"architecture": "wasm", "os": "wasi", "config": {"Entrypoint": ["/gcd.wasm"]}}),
        ),
        vec![Blob::new(
            OCI_LAYER_GZIP,
            gzip_tar(&[("gcd.wasm", &gcd()), ("other.wasm", &string_module())]),
        )],
    );
    let attestation = OciImage::new(
        Blob::json(
            OCI_CONFIG,
            &json!({"architecture": "unknown", "os": "unknown"}),
        ),
        vec![Blob::new("application/vnd.in-toto+json", b"{}".to_vec())],
    );
    let zstd_layer = ruzstd::encoding::compress_to_vec(
        &plain_tar(&[("fn.wasm", &gcd())])[..],
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    let mut component = b"\0asm\x0d\x00\x01\x00".to_vec();
    component.extend([0u8; 4]);
    vec![
        (
            "CNCF TAG-Runtime wasm artifact (wash, wkg, runwasi --as-artifact)",
            Shape::Image(OciImage::new(
                Blob::json(
                    WASM_CONFIG_V0,
                    &json!({"architecture": "wasm", "os": "wasip1", "layerDigests": []}),
                ),
                vec![Blob::new("application/wasm", gcd())],
            )),
            Expect::Gcd,
        ),
        (
            "wasm-to-oci (older)",
            Shape::Image(OciImage::new(
                Blob::json(WASM_CONFIG_V1, &json!({})),
                vec![Blob::new(
                    "application/vnd.wasm.content.layer.v1+wasm",
                    gcd(),
                )],
            )),
            Expect::Gcd,
        ),
        (
            "Spin 1.x: module layer, a data layer and the locked app are ignored",
            Shape::Image(OciImage::new(
                Blob::json(
                    "application/vnd.fermyon.spin.application.v1+config",
                    &json!({"spin_version": "1"}),
                ),
                vec![
                    Blob::new("application/vnd.module.wasm.content.layer.v1+wasm", gcd()),
                    Blob::new(
                        "application/vnd.wasm.content.layer.v1+data",
                        b"static file".to_vec(),
                    ),
                    Blob::json(
                        "application/vnd.fermyon.spin.application.v1+config",
                        &json!({"components": []}),
                    ),
                ],
            )),
            Expect::Gcd,
        ),
        (
            "runwasi: OCI image config, wasm layer",
            Shape::Image(OciImage::new(
                image_config("wasip1", None),
                vec![Blob::new(
                    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
                    gcd(),
                )],
            )),
            Expect::Gcd,
        ),
        (
            "runwasi: rootfs file named by Entrypoint[0] with a #func suffix",
            Shape::Image(OciImage::new(
                image_config("wasip1", Some("/app/gcd.wasm#gcd")),
                vec![Blob::new(
                    OCI_LAYER_GZIP,
                    gzip_tar(&[
                        ("app/gcd.wasm", &gcd()),
                        ("app/helper.wasm", &string_module()),
                    ]),
                )],
            )),
            Expect::Gcd,
        ),
        (
            "oras push x.wasm: empty config, raw module typed as a tar",
            Shape::Image(oras),
            Expect::Gcd,
        ),
        (
            "buildx --platform wasi/wasm: index with an attestation next to it",
            Shape::Index(vec![
                (wasm_platform("wasi"), buildx_entry),
                (
                    json!({"os": "unknown", "architecture": "unknown",
                           "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}),
                    attestation,
                ),
            ]),
            Expect::Gcd,
        ),
        (
            "Spin's index platform written Wasip1",
            Shape::Index(vec![(
                wasm_platform("Wasip1"),
                OciImage::new(
                    Blob::json(
                        WASM_CONFIG_V0,
                        &json!({"architecture": "wasm", "os": "wasip1"}),
                    ),
                    vec![Blob::new("application/wasm", gcd())],
                ),
            )]),
            Expect::Gcd,
        ),
        (
            "Istio/Envoy compat image: plugin.wasm in a tar+gzip layer",
            Shape::Image(OciImage::new(
                Blob::json(
                    DOCKER_CONFIG,
                    &json!({"architecture": "amd64", "os": "linux"}),
                ),
                vec![Blob::new(
                    OCI_LAYER_GZIP,
                    gzip_tar(&[("plugin.wasm", &gcd())]),
                )],
            )),
            Expect::Gcd,
        ),
        (
            "tar+zstd layer",
            Shape::Image(OciImage::new(
                image_config("wasip1", None),
                vec![Blob::new(OCI_LAYER_ZSTD, zstd_layer)],
            )),
            // The riscv64 build leaves the decoder out (cross/targets.sh):
            // there the layer is refused, naming the feature.
            if crate::support::engine_has_feature("zstd") {
                Expect::Gcd
            } else {
                Expect::Refused(422, "this build has no zstd support")
            },
        ),
        (
            "a tar without its end blocks (umoci insert)",
            Shape::Image(OciImage::new(
                image_config("wasip1", None),
                vec![Blob::new(OCI_LAYER_TAR, {
                    let tar = plain_tar(&[("fn.wasm", &gcd())]);
                    let end = tar.len() - 1024;
                    tar[..end].to_vec()
                })],
            )),
            Expect::Gcd,
        ),
        (
            "a component (wasip2) is refused",
            Shape::Image(OciImage::new(
                Blob::json(
                    WASM_CONFIG_V0,
                    &json!({"architecture": "wasm", "os": "wasip2"}),
                ),
                vec![Blob::new("application/wasm", component)],
            )),
            Expect::Refused(422, "only core modules run here"),
        ),
        (
            "an entrypoint naming a missing file, among several .wasm",
            Shape::Image(OciImage::new(
                image_config("wasip1", Some("/missing.wasm")),
                vec![Blob::new(
                    OCI_LAYER_GZIP,
                    gzip_tar(&[("gcd.wasm", &gcd()), ("other.wasm", &string_module())]),
                )],
            )),
            Expect::Refused(422, "entrypoint names /missing.wasm"),
        ),
    ]
}

#[test]
fn every_wasm_image_format_deploys_and_runs() {
    let registry = Registry::start_real();
    let engine = Engine::start();
    for (number, (what, shape, expect)) in cases().into_iter().enumerate() {
        let image = registry.image(&format!("format{number}:v1"));
        match &shape {
            Shape::Image(oci_image) => push_image(&image, oci_image),
            Shape::Index(entries) => {
                let entries: Vec<(Value, &OciImage)> =
                    entries.iter().map(|(p, i)| (p.clone(), i)).collect();
                push_index(&image, &entries)
            }
        };
        let name = "gcd";
        let reply = engine.post(
            "/function/deploy",
            &json!({"function_name": name, "function_image": image}).to_string(),
        );
        match expect {
            Expect::Gcd => {
                assert_eq!(reply.status, 200, "{what}: {}", reply.body);
                let output = engine.invoke(name, json!({"a": "1071", "b": "462"}));
                assert_eq!((output.status, output.message()), (200, "21"), "{what}");
                let deleted = engine.post(
                    "/function/delete",
                    &json!({"function_name": name}).to_string(),
                );
                assert_eq!(deleted.status, 200, "{}", deleted.body);
            }
            Expect::Refused(status, fragment) => {
                eprintln!("case: {what}");
                assert_error(&reply, status, fragment);
            }
        }
    }
}
