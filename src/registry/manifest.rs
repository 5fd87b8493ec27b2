//! Manifests and indexes: the media types the engine reads, parsing, and
//! picking one entry of a multi-platform index.

use serde::Deserialize;

use super::error::{RegistryError, host_platform};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Non-distributable ("foreign") layers, still a tar, as old Windows images wrote them.
const OCI_NONDISTRIBUTABLE_PREFIX: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// OCI image config (also what runwasi's and buildah's wasm images carry).
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The CNCF TAG-Runtime wasm artifact's config (`wash`, `wkg`, runwasi `--as-artifact`).
pub const WASM_CONFIG_V0: &str = "application/vnd.wasm.config.v0+json";
/// wasm-to-oci's, Spin 1.x's and old wasmCloud's config.
pub const WASM_CONFIG_V1: &str = "application/vnd.wasm.config.v1+json";
/// OCI 1.1's empty config (`oras push` with defaults).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// Layers that are the raw module (or component) bytes, not an archive.
pub const RAW_WASM_LAYERS: &[&str] = &[
    "application/wasm",
    "application/vnd.wasm.content.layer.v1+wasm",
    "application/vnd.module.wasm.content.layer.v1+wasm",
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
];

/// The `Accept` header for manifest requests.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// A content descriptor: what a manifest says about a blob or a child manifest.
#[derive(Clone, Debug, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
}

#[derive(Debug, Deserialize)]
struct RawManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
}

/// A parsed manifest document.
#[derive(Debug)]
pub enum Manifest {
    /// A single image: its config (absent in some artifacts) and its layers,
    /// bottom first.
    Image {
        config: Option<Descriptor>,
        layers: Vec<Descriptor>,
    },
    /// A multi-platform index or manifest list.
    Index { manifests: Vec<Descriptor> },
}

/// Parses a manifest, using the response's `Content-Type` when the document
/// does not carry its own `mediaType`.
pub fn parse(reference: &str, content_type: &str, body: &[u8]) -> Result<Manifest, RegistryError> {
    let raw: RawManifest =
        serde_json::from_slice(body).map_err(|error| RegistryError::InvalidManifest {
            reference: reference.to_owned(),
            reason: format!("not a JSON manifest ({error})"),
        })?;
    let content_type = content_type.split(';').next().unwrap_or("").trim();
    let media_type = raw
        .media_type
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| content_type.to_owned());
    let unsupported = || RegistryError::UnsupportedManifest {
        reference: reference.to_owned(),
        media_type: media_type.clone(),
    };
    if raw.schema_version != Some(2) {
        return Err(unsupported());
    }
    match media_type.as_str() {
        DOCKER_MANIFEST | OCI_MANIFEST => raw
            .layers
            .map(|layers| Manifest::Image {
                config: raw.config,
                layers,
            })
            .ok_or_else(|| RegistryError::InvalidManifest {
                reference: reference.to_owned(),
                reason: "image manifest has no layers array".into(),
            }),
        DOCKER_MANIFEST_LIST | OCI_INDEX => raw
            .manifests
            .map(|manifests| Manifest::Index { manifests })
            .ok_or_else(|| RegistryError::InvalidManifest {
                reference: reference.to_owned(),
                reason: "index has no manifests array".into(),
            }),
        // An OCI manifest may omit mediaType and be served as plain JSON.
        _ if raw.layers.is_some() && raw.manifests.is_none() => Ok(Manifest::Image {
            config: raw.config,
            layers: raw.layers.unwrap_or_default(),
        }),
        _ if raw.manifests.is_some() && raw.layers.is_none() => Ok(Manifest::Index {
            manifests: raw.manifests.unwrap_or_default(),
        }),
        _ => Err(unsupported()),
    }
}

/// Picks the index entry to run: architecture `wasm` with os `wasi`, `wasip1`
/// or `wasip2` (compared case-insensitively: Spin writes `Wasip1`), else this
/// host's `linux/<arch>`, else the only entry that is not an attestation.
pub fn select_platform<'a>(
    reference: &str,
    manifests: &'a [Descriptor],
) -> Result<&'a Descriptor, RegistryError> {
    let runnable: Vec<&Descriptor> = manifests
        .iter()
        .filter(|entry| !is_attestation(entry))
        .collect();
    let platform_of = |entry: &Descriptor| {
        entry
            .platform
            .as_ref()
            .map(|p| format!("{}/{}", p.os, p.architecture))
            .unwrap_or_default()
    };
    let host = host_platform();
    runnable
        .iter()
        .find(|entry| is_wasm_platform(&platform_of(entry)))
        .or_else(|| {
            runnable
                .iter()
                .find(|entry| platform_of(entry).eq_ignore_ascii_case(&host))
        })
        .or(match runnable.as_slice() {
            [only] => Some(only),
            _ => None,
        })
        .copied()
        .ok_or_else(|| RegistryError::NoMatchingPlatform {
            reference: reference.to_owned(),
            platforms: runnable.iter().map(|entry| platform_of(entry)).collect(),
        })
}

fn is_wasm_platform(platform: &str) -> bool {
    let platform = platform.to_ascii_lowercase();
    matches!(
        platform.as_str(),
        "wasi/wasm" | "wasip1/wasm" | "wasip2/wasm"
    )
}

fn is_attestation(entry: &Descriptor) -> bool {
    let unknown_platform = entry.platform.as_ref().is_some_and(|p| {
        p.os.eq_ignore_ascii_case("unknown") && p.architecture.eq_ignore_ascii_case("unknown")
    });
    let attestation_annotation = entry.annotations.as_ref().is_some_and(|a| {
        a.get("vnd.docker.reference.type")
            .is_some_and(|t| t == "attestation-manifest")
    });
    unknown_platform || attestation_annotation
}

/// What a layer holds, from its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// The raw module (or component) bytes.
    RawWasm,
    /// A filesystem layer: a tar, plain or compressed. The bytes are
    /// sniffed (gzip, zstd, tar, or a raw module `oras` typed as a tar).
    Archive,
    /// Anything else (data layers, Spin's locked app, signatures): ignored.
    Other,
}

/// Classifies a layer by its media type (parameters such as `;version=` ignored).
pub fn layer_kind(media_type: &str) -> LayerKind {
    let media_type = media_type.split(';').next().unwrap_or("").trim();
    if RAW_WASM_LAYERS.contains(&media_type) {
        return LayerKind::RawWasm;
    }
    match media_type {
        DOCKER_LAYER_GZIP | OCI_LAYER_GZIP | DOCKER_LAYER_TAR | OCI_LAYER_TAR | OCI_LAYER_ZSTD
        | DOCKER_LAYER_ZSTD => LayerKind::Archive,
        // Docker's foreign layers and OCI's non-distributable ones are tars too.
        _ if media_type.starts_with(OCI_NONDISTRIBUTABLE_PREFIX)
            || media_type == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" =>
        {
            LayerKind::Archive
        }
        _ => LayerKind::Other,
    }
}

/// Whether a config blob is worth reading (an image or wasm config, which
/// may name the entrypoint or the wasm os); the empty config and tool
/// configs are skipped.
pub fn config_is_readable(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_CONFIG | DOCKER_CONFIG | WASM_CONFIG_V0 | WASM_CONFIG_V1
    )
}

/// What the engine reads from an image config: the entrypoint. (Whether
/// the module is a component is read from its own bytes, not the config's
/// `os`, which tools fill in loosely.)
#[derive(Debug, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub config: Option<ContainerConfig>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ContainerConfig {
    #[serde(rename = "Entrypoint", default)]
    pub entrypoint: Option<Vec<String>>,
}

impl ImageConfig {
    /// The image path the config's `Entrypoint[0]` names, without a
    /// `#function` suffix (runwasi's) and without the leading `/`.
    pub fn entrypoint_path(&self) -> Option<String> {
        let first = self.config.as_ref()?.entrypoint.as_ref()?.first()?;
        let path = first.split('#').next().unwrap_or("");
        let path = path.trim_start_matches("./").trim_start_matches('/');
        (!path.is_empty()).then(|| path.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(os: &str, arch: &str) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: format!("sha256:{os}{arch}"),
            size: None,
            platform: Some(Platform {
                os: os.into(),
                architecture: arch.into(),
            }),
            annotations: None,
        }
    }

    #[test]
    fn index_prefers_wasi_then_host_then_the_only_runnable_entry() {
        let host = host_platform();
        let (host_os, host_arch) = host.split_once('/').unwrap();
        let picked =
            |entries: &[Descriptor]| select_platform("r", entries).map(|d| d.digest.clone());
        assert_eq!(
            picked(&[entry(host_os, host_arch), entry("wasi", "wasm")]).unwrap(),
            "sha256:wasiwasm"
        );
        assert_eq!(
            picked(&[entry("linux", "s390x"), entry(host_os, host_arch)]).unwrap(),
            format!("sha256:{host_os}{host_arch}")
        );
        assert_eq!(
            picked(&[entry("linux", "s390x"), entry("unknown", "unknown")]).unwrap(),
            "sha256:linuxs390x"
        );
        let error = picked(&[entry("linux", "s390x"), entry("linux", "ppc64le")]).unwrap_err();
        assert!(
            error.to_string().contains("linux/s390x, linux/ppc64le"),
            "{error}"
        );
    }

    #[test]
    fn wasm_platforms_are_matched_case_insensitively() {
        let picked =
            |entries: &[Descriptor]| select_platform("r", entries).map(|d| d.digest.clone());
        assert_eq!(
            picked(&[entry("linux", "s390x"), entry("Wasip1", "wasm")]).unwrap(),
            "sha256:Wasip1wasm"
        );
        assert_eq!(
            picked(&[entry("linux", "s390x"), entry("wasip2", "WASM")]).unwrap(),
            "sha256:wasip2WASM"
        );
    }

    #[test]
    fn layers_are_classified_by_media_type() {
        assert_eq!(layer_kind("application/wasm"), LayerKind::RawWasm);
        assert_eq!(
            layer_kind("application/vnd.module.wasm.content.layer.v1+wasm"),
            LayerKind::RawWasm
        );
        assert_eq!(layer_kind(OCI_LAYER_ZSTD), LayerKind::Archive);
        assert_eq!(layer_kind(OCI_LAYER_TAR), LayerKind::Archive);
        assert_eq!(
            layer_kind("application/vnd.fermyon.spin.application.v1+config"),
            LayerKind::Other
        );
    }

    #[test]
    fn the_entrypoint_loses_its_slash_and_function_suffix() {
        let config: ImageConfig =
            serde_json::from_str(r#"{"os":"wasip1","config":{"Entrypoint":["/app/fn.wasm#run"]}}"#)
                .unwrap();
        assert_eq!(config.entrypoint_path().as_deref(), Some("app/fn.wasm"));
        assert_eq!(ImageConfig::default().entrypoint_path(), None);
    }

    #[test]
    fn parse_reads_media_type_from_document_or_header() {
        let image = br#"{"schemaVersion":2,"layers":[{"mediaType":"x","digest":"d","size":1}]}"#;
        assert!(matches!(
            parse("r", DOCKER_MANIFEST, image).unwrap(),
            Manifest::Image { .. }
        ));
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(matches!(
            parse("r", "application/json", index).unwrap(),
            Manifest::Index { .. }
        ));
    }

    #[test]
    fn parse_refuses_non_json_and_schema_one() {
        assert!(matches!(
            parse("r", DOCKER_MANIFEST, b"<html>").unwrap_err(),
            RegistryError::InvalidManifest { .. }
        ));
        let schema1 = br#"{"schemaVersion":1,"fsLayers":[]}"#;
        assert!(matches!(
            parse(
                "r",
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
                schema1
            )
            .unwrap_err(),
            RegistryError::UnsupportedManifest { .. }
        ));
    }
}
