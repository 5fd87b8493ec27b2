//! Image references: any string parses or is refused; what parses prints
//! back to a reference that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_engine::registry::ImageReference;

fuzz_target!(|text: &str| {
    if let Ok(reference) = ImageReference::parse(text) {
        let printed = reference.to_string();
        let reparsed = ImageReference::parse(&printed).unwrap_or_else(|error| {
            panic!("{text:?} printed as {printed:?}, which fails: {error}")
        });
        assert_eq!(reparsed.to_string(), printed);
    }
});
