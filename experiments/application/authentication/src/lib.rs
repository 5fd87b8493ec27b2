//! `authentication`, string ABI: `authentication(ptr, len) -> i64`.
//! A missing argument is answered as `{"status":"400","body":"missing argument: <key>"}`.

mod logic;

#[global_allocator]
static ALLOCATOR: wasm_engine_sdk::BumpAllocator = wasm_engine_sdk::BumpAllocator;

wasm_engine_sdk::export_string_function!("authentication", logic::authenticate);
