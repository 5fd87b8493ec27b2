//! Manifests and indexes: any body, under each content type the registry
//! may send, parses or is refused; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_engine::fuzzing::parse_manifest;
use wasm_engine::registry::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};

const CONTENT_TYPES: [&str; 5] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    "application/json",
];

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[kind as usize % CONTENT_TYPES.len()];
    let _ = parse_manifest("fuzz/image:tag", content_type, body);
});
