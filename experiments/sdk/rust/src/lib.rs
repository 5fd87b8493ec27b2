//! Helpers for writing [WasmEngine](https://gitee.com/openeuler/WasmEngine)
//! functions in Rust.
//!
//! - [`export_string_function!`] exports a `fn(&Args) -> R` as a string-ABI
//!   function, [`export_raw_string_function!`] a `fn(&str) -> R` that reads
//!   the arguments' JSON text itself; `R` is `String`, `&str` or
//!   `Result<String, String>` (see [`Output`]). The export has the type
//!   `(i32, i32) -> i64`, returning the output's `ptr << 32 | len`, which
//!   stable Rust can produce directly.
//! - [`Args`]: the arguments, parsed from the flat JSON object of strings the
//!   engine sends (`{"a":"1","b":"x"}`), without a JSON library. WASI
//!   functions use it on `argv[0]`.
//! - [`BumpAllocator`]: a global allocator that never frees, for functions
//!   that run once per instance (as every WasmEngine invocation does).
//! - [`json_string`], [`push_json_string`], [`hex`]: small output helpers
//!   that avoid `core::fmt` (slow under an interpreter).
//! - [`call`]: calls another deployed function through the engine's host
//!   module `wasm_engine` (the caller is deployed with `"calls"`), with
//!   its errors as a [`CallError`].
//!
//! It does not handle the numeric ABI (an ordinary `extern "C" fn` of
//! numbers needs no help).
#![no_std]

extern crate alloc;

mod args;
mod bump;
mod call;
mod json;

pub use args::Args;
pub use bump::BumpAllocator;
pub use call::{CallError, call};
pub use json::{hex, json_string, push_json_string};

use alloc::string::String;

/// What a string-ABI function may return.
pub trait Output {
    /// The text the engine answers with.
    fn into_output(self) -> String;
}

impl Output for String {
    fn into_output(self) -> String {
        self
    }
}

impl Output for &str {
    fn into_output(self) -> String {
        String::from(self)
    }
}

/// `Err(message)` is answered as `{"status":"400","body":"<message>"}`, the
/// convention of the reference engine's example functions: the engine itself
/// still answers 200, as it does for every output.
impl Output for Result<String, String> {
    fn into_output(self) -> String {
        self.unwrap_or_else(|message| bad_request(&message))
    }
}

/// `{"status":"400","body":"<message>"}`.
pub fn bad_request(message: &str) -> String {
    let mut output = String::from("{\"status\":\"400\",\"body\":");
    push_json_string(&mut output, message);
    output.push('}');
    output
}

/// Exports `handler: fn(&Args) -> impl Output` as the string-ABI function
/// `name`: `name(ptr, len) -> i64`. Arguments that do not parse are answered
/// as a 400 (see [`bad_request`]) without calling `handler`.
///
/// ```ignore
/// wasm_engine_sdk::export_string_function!("greet", greet);
/// ```
#[macro_export]
macro_rules! export_string_function {
    ($name:literal, $handler:expr) => {
        const _: () = {
            /// The engine's entry point.
            ///
            /// # Safety
            /// Called by the engine with its input bytes at `ptr..ptr+len`.
            #[unsafe(export_name = $name)]
            unsafe extern "C" fn wasm_engine_string_function(ptr: u32, len: u32) -> u64 {
                // SAFETY: the engine passes its own input range.
                unsafe {
                    $crate::__string_abi(ptr, len, |input| match $crate::Args::parse(input) {
                        Ok(args) => $crate::Output::into_output($handler(&args)),
                        Err(message) => $crate::bad_request(&message),
                    })
                }
            }
        };
    };
}

/// Exports `handler: fn(&str) -> impl Output`, which receives the
/// arguments' JSON text as the engine sent it, as the string-ABI function
/// `name`.
///
/// ```ignore
/// wasm_engine_sdk::export_raw_string_function!("echo", |input: &str| input.to_owned());
/// ```
#[macro_export]
macro_rules! export_raw_string_function {
    ($name:literal, $handler:expr) => {
        const _: () = {
            /// The engine's entry point.
            ///
            /// # Safety
            /// Called by the engine with its input bytes at `ptr..ptr+len`.
            #[unsafe(export_name = $name)]
            unsafe extern "C" fn wasm_engine_string_function(ptr: u32, len: u32) -> u64 {
                // SAFETY: the engine passes its own input range.
                unsafe {
                    $crate::__string_abi(ptr, len, |input| {
                        $crate::Output::into_output($handler(input))
                    })
                }
            }
        };
    };
}

/// Runs `body` on the input at `ptr..ptr+len` and returns the output's
/// location as `ptr << 32 | len`. The output is leaked on purpose: the
/// engine reads it and then discards the whole instance.
///
/// # Safety
/// `ptr..ptr+len` must be the engine's input bytes in this instance's memory.
#[doc(hidden)]
pub unsafe fn __string_abi(ptr: u32, len: u32, body: impl FnOnce(&str) -> String) -> u64 {
    // SAFETY: the caller guarantees the range is the engine-written input.
    let input = unsafe { core::slice::from_raw_parts(ptr as usize as *const u8, len as usize) };
    let output = match core::str::from_utf8(input) {
        Ok(text) => body(text),
        Err(_) => bad_request("input is not UTF-8"),
    };
    let output = output.into_bytes().leak();
    ((output.as_ptr() as usize as u64) << 32) | output.len() as u64
}
