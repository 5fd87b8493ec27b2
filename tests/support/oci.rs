//! OCI image layouts written by the tests and copied into a registry with
//! the real `skopeo copy --preserve-digests`, for image shapes other tools
//! make (wasm artifacts, `oras` pushes, runwasi images, buildx indexes).

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use wasm_engine::registry::{Digest, OCI_INDEX, OCI_MANIFEST};

/// A blob: its media type and bytes.
pub struct Blob {
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            media_type: media_type.to_owned(),
            bytes: bytes.into(),
        }
    }

    pub fn json(media_type: &str, value: &Value) -> Self {
        Self::new(media_type, value.to_string().into_bytes())
    }

    fn descriptor(&self) -> Value {
        json!({
            "mediaType": self.media_type,
            "digest": Digest::of(&self.bytes).as_str(),
            "size": self.bytes.len(),
        })
    }
}

/// One image manifest of a layout: config, layers, optional `artifactType`.
pub struct OciImage {
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub artifact_type: Option<String>,
}

impl OciImage {
    pub fn new(config: Blob, layers: Vec<Blob>) -> Self {
        Self {
            config,
            layers,
            artifact_type: None,
        }
    }

    /// The manifest's bytes.
    pub fn manifest(&self) -> Vec<u8> {
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.config.descriptor(),
            "layers": self.layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        });
        if let Some(artifact_type) = &self.artifact_type {
            manifest["artifactType"] = json!(artifact_type);
        }
        manifest.to_string().into_bytes()
    }

    fn write_blobs(&self, layout: &Path) {
        write_blob(layout, &self.config.bytes);
        for layer in &self.layers {
            write_blob(layout, &layer.bytes);
        }
        write_blob(layout, &self.manifest());
    }
}

fn write_blob(layout: &Path, bytes: &[u8]) {
    let digest = Digest::of(bytes);
    let directory = layout.join("blobs/sha256");
    std::fs::create_dir_all(&directory).expect("creating blobs/sha256");
    std::fs::write(directory.join(digest.hex()), bytes).expect("writing a blob");
}

/// Writes an OCI layout whose `index.json` names `top` (an image manifest or
/// an index) under `tag`, and copies it to `image` with skopeo. Returns the
/// top manifest's digest.
fn copy_layout(
    layout: &Path,
    top_media_type: &str,
    top: &[u8],
    tag: &str,
    image: &str,
    all: bool,
) -> Digest {
    write_blob(layout, top);
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("writing oci-layout");
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": top_media_type,
            "digest": Digest::of(top).as_str(),
            "size": top.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).expect("writing index.json");
    let mut command = Command::new("skopeo");
    command.args([
        "copy",
        "--quiet",
        "--preserve-digests",
        "--dest-tls-verify=false",
    ]);
    if all {
        command.arg("--all");
    }
    let output = command
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{image}"))
        .output()
        .expect("skopeo is not installed: run `make deps`");
    assert!(
        output.status.success(),
        "skopeo copy to {image} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Digest::of(top)
}

/// Copies `image_manifest` to `image` (`host:port/repo:tag`) with skopeo.
pub fn push_image(image: &str, oci_image: &OciImage) -> Digest {
    let layout = tempfile::tempdir().expect("temporary directory");
    oci_image.write_blobs(layout.path());
    let tag = image.rsplit(':').next().expect("image has a tag");
    copy_layout(
        layout.path(),
        OCI_MANIFEST,
        &oci_image.manifest(),
        tag,
        image,
        false,
    )
}

/// Copies an OCI index over `entries` (`(platform JSON, image)`; a
/// platform may carry annotations under `"annotations"`) to `image`.
pub fn push_index(image: &str, entries: &[(Value, &OciImage)]) -> Digest {
    let layout = tempfile::tempdir().expect("temporary directory");
    let mut manifests = Vec::new();
    for (platform, oci_image) in entries {
        oci_image.write_blobs(layout.path());
        let manifest = oci_image.manifest();
        let mut descriptor = json!({
            "mediaType": OCI_MANIFEST,
            "digest": Digest::of(&manifest).as_str(),
            "size": manifest.len(),
        });
        let mut platform = platform.clone();
        if let Some(annotations) = platform
            .as_object_mut()
            .and_then(|p| p.remove("annotations"))
        {
            descriptor["annotations"] = annotations;
        }
        descriptor["platform"] = platform;
        manifests.push(descriptor);
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
        .to_string()
        .into_bytes();
    let tag = image.rsplit(':').next().expect("image has a tag");
    copy_layout(layout.path(), OCI_INDEX, &index, tag, image, true)
}
