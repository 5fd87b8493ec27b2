//! Packaging and pushing images: the same shape `FROM scratch` + `ADD x.wasm /`
//! gives with docker (a Docker schema 2 manifest, a config blob, one gzip tar
//! layer with the file at the root), pushed through the registry HTTP API.

use std::io::Read;

use serde_json::json;

use super::client::RegistryClient;
use super::digest::Digest;
use super::error::RegistryError;
use super::layer::{LayerFile, build_gzip_tar};
use super::manifest::{DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST};
use super::reference::ImageReference;
use super::session::Session;
use super::transport::{authorized, body_excerpt};

impl RegistryClient {
    /// Pushes `wasm` as a one-layer image holding `/<file_name>` and returns
    /// the manifest digest.
    ///
    /// # Errors
    /// A [`RegistryError`] when the registry is unreachable or refuses the push.
    pub fn push_wasm(
        &self,
        reference: &ImageReference,
        file_name: &str,
        wasm: &[u8],
    ) -> Result<Digest, RegistryError> {
        let layer = build_gzip_tar(&[LayerFile {
            path: file_name.to_owned(),
            contents: wasm.to_vec(),
        }])
        .map_err(|error| RegistryError::InvalidLayer {
            digest: "(new layer)".into(),
            reason: error.to_string(),
        })?;
        self.push_layers(reference, &[(DOCKER_LAYER_GZIP, layer)])
    }

    /// Pushes an image made of the given `(media type, blob)` layers, bottom
    /// first, under a Docker schema 2 manifest, and returns its digest.
    ///
    /// # Errors
    /// A [`RegistryError`] when the registry is unreachable or refuses the push.
    pub fn push_layers(
        &self,
        reference: &ImageReference,
        layers: &[(&str, Vec<u8>)],
    ) -> Result<Digest, RegistryError> {
        let mut session = self.session(reference, "pull,push");
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|(_, blob)| uncompressed_digest(blob).to_string())
            .collect();
        let config = serde_json::to_vec(&json!({
            "architecture": "wasm",
            "os": "wasi",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .expect("a JSON value always serializes");
        let config_digest = push_blob(&mut session, &config)?;
        let mut layer_descriptors = Vec::new();
        for (media_type, blob) in layers {
            let digest = push_blob(&mut session, blob)?;
            layer_descriptors.push(json!({
                "mediaType": media_type,
                "size": blob.len(),
                "digest": digest.as_str(),
            }));
        }
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": DOCKER_CONFIG,
                "size": config.len(),
                "digest": config_digest.as_str(),
            },
            "layers": layer_descriptors,
        }))
        .expect("a JSON value always serializes");
        self.push_manifest(reference, DOCKER_MANIFEST, &manifest)
    }

    /// Puts `manifest` (of `media_type`) under the reference's tag and
    /// returns its digest. The blobs or child manifests it names must be
    /// pushed first.
    ///
    /// # Errors
    /// A [`RegistryError`] when the registry is unreachable or refuses it.
    pub fn push_manifest(
        &self,
        reference: &ImageReference,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<Digest, RegistryError> {
        let mut session = self.session(reference, "pull,push");
        let tag = reference.manifest_reference().to_owned();
        let url = session.url(&format!("manifests/{tag}"));
        let mut response = session.send(&url, |agent, url, authorization| {
            authorized(
                agent.put(url).header("Content-Type", media_type),
                authorization,
            )
            .send(manifest)
        })?;
        if response.status().as_u16() != 201 {
            return Err(RegistryError::PushRejected {
                url,
                status: response.status().as_u16(),
                body_excerpt: body_excerpt(&mut response),
            });
        }
        Ok(Digest::of(manifest))
    }
}

/// Uploads `blob` unless the registry has it already (monolithic upload:
/// `POST .../blobs/uploads/` then `PUT <location>&digest=...`).
fn push_blob(session: &mut Session<'_>, blob: &[u8]) -> Result<Digest, RegistryError> {
    let digest = Digest::of(blob);
    let url = session.url(&format!("blobs/{digest}"));
    let response = session.send(&url, |agent, url, authorization| {
        authorized(agent.head(url), authorization).call()
    })?;
    if response.status().as_u16() == 200 {
        return Ok(digest);
    }
    let url = session.url("blobs/uploads/");
    let mut response = session.send(&url, |agent, url, authorization| {
        authorized(agent.post(url), authorization).send_empty()
    })?;
    let location = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let (202, Some(location)) = (response.status().as_u16(), location) else {
        return Err(RegistryError::PushRejected {
            url,
            status: response.status().as_u16(),
            body_excerpt: body_excerpt(&mut response),
        });
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let url = format!("{}{separator}digest={digest}", session.absolute(&location));
    let mut response = session.send(&url, |agent, url, authorization| {
        authorized(
            agent
                .put(url)
                .header("Content-Type", "application/octet-stream"),
            authorization,
        )
        .send(blob)
    })?;
    if response.status().as_u16() != 201 {
        return Err(RegistryError::PushRejected {
            url,
            status: response.status().as_u16(),
            body_excerpt: body_excerpt(&mut response),
        });
    }
    Ok(digest)
}

/// The digest of a layer's uncompressed tar (its `diff_id`).
fn uncompressed_digest(blob: &[u8]) -> Digest {
    if blob.starts_with(&[0x1f, 0x8b]) {
        let mut tar = Vec::new();
        if flate2::read::GzDecoder::new(blob)
            .read_to_end(&mut tar)
            .is_ok()
        {
            return Digest::of(&tar);
        }
    }
    Digest::of(blob)
}
