//! The only module that talks to container registries.
//!
//! It owns image references ([`ImageReference`]), the Docker Registry HTTP API
//! V2 / OCI distribution client ([`RegistryClient`]) with credentials
//! from docker/podman files and helpers (`auth`), manifest and index parsing with platform selection
//! (`manifest`), streamed digest-checked layer extraction (`layer`), and
//! packaging a `.wasm` into a one-layer image for `wasm_engine push`
//! (`push`). It never writes the data directory: a pull returns the `.wasm`
//! bytes and the caller decides where they go.

mod auth;
mod client;
mod digest;
mod error;
mod layer;
mod manifest;
mod proxy;
mod pull;
mod push;
mod reference;
mod session;
mod tls;
mod transport;

pub use client::{RegistryClient, RegistryOptions};
pub use digest::Digest;
pub(crate) use error::RegistryError;
pub use layer::{LayerFile, LayerLimits, build_gzip_tar};
pub use manifest::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_EMPTY,
    OCI_INDEX, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD, OCI_MANIFEST, WASM_CONFIG_V0,
    WASM_CONFIG_V1,
};
pub(crate) use proxy::ProxySettings;
pub(crate) use pull::BlobSource;
pub use reference::ImageReference;
#[cfg(test)]
pub(crate) use tls::TlsSettings;

// For the fuzz targets only (`wasm_engine::fuzzing`).
#[cfg(fuzzing)]
pub use {layer::WasmFiles, manifest::parse as parse_manifest};
