//! `echo-string`, string ABI: returns its input JSON with the character `b` appended.

#[global_allocator]
static ALLOCATOR: wasm_engine_sdk::BumpAllocator = wasm_engine_sdk::BumpAllocator;

wasm_engine_sdk::export_raw_string_function!("echo-string", |input: &str| format!("{input}b"));
