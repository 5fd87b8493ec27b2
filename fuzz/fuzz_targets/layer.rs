//! Layer extraction: any blob (gzip or plain tar, or neither) yields the
//! image's `.wasm` files or an error, within the size caps; never a panic,
//! never more than the caps in memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_engine::fuzzing::WasmFiles;
use wasm_engine::registry::{Digest, LayerLimits};

const LIMITS: LayerLimits = LayerLimits {
    max_blob_bytes: 1 << 20,
    max_unpacked_bytes: 4 << 20,
    max_wasm_bytes: 1 << 20,
};

fuzz_target!(|blob: &[u8]| {
    let mut files = WasmFiles::default();
    // The digest matches, so extraction itself is what is exercised.
    if files
        .apply_layer(&mut &blob[..], &Digest::of(blob), Some(blob.len() as u64), &LIMITS)
        .is_ok()
    {
        if let Ok(file) = files.into_single("fuzz/image:tag") {
            assert!(file.contents.len() as u64 <= LIMITS.max_wasm_bytes);
        }
    }
});
