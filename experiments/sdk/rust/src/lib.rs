//! Helpers for writing [WasmEngine](https://gitee.com/openeuler/WasmEngine)
//! functions in Rust.
//!
//! - [`export_string_function!`] exports a `fn(&Args) -> R` as a string-ABI
//!   function, [`export_raw_string_function!`] a `fn(&str) -> R` that reads
//!   the arguments' JSON text itself, [`export_bytes_function!`] a
//!   `fn(&[u8]) -> R` that takes its input as bytes (a provider route's
//!   request body may be an image); `R` is `String`, `&str`, `Vec<u8>`
//!   (bytes, text or not: the engine answers them as they are) or a
//!   `Result` of `String` or `Vec<u8>` with a `String` error (see
//!   [`Output`]). The export has the type
//!   `(i32, i32) -> i64`, returning the output's `ptr << 32 | len`, which
//!   stable Rust can produce directly.
//! - [`Args`]: the arguments, parsed from the flat JSON object of strings the
//!   engine sends (`{"a":"1","b":"x"}`), without a JSON library. WASI
//!   functions use it on `argv[0]`.
//! - [`BumpAllocator`]: a global allocator that never frees, for functions
//!   that run once per instance (as every WasmEngine invocation does).
//! - [`json_string`], [`push_json_string`], [`hex`]: small output helpers
//!   that avoid `core::fmt` (slow under an interpreter).
//! - [`call`] (its output as text) and [`call_bytes`] (as bytes): call
//!   another deployed function through the engine's host module
//!   `wasm_engine` (the caller is deployed with `"calls"`), with its errors
//!   as a [`CallError`].
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
pub use call::{CallError, call, call_bytes};
pub use json::{hex, json_string, push_json_string};

use alloc::string::String;
use alloc::vec::Vec;

/// What a string-ABI function may return.
pub trait Output {
    /// The bytes the engine answers with: text, or any bytes at all.
    fn into_output(self) -> Vec<u8>;
}

impl Output for String {
    fn into_output(self) -> Vec<u8> {
        self.into_bytes()
    }
}

impl Output for &str {
    fn into_output(self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

/// Bytes, answered as they are: an image, an archive. The REST API sends
/// them after `message: ` (or as `output_base64` in JSON), the provider's
/// route as the body.
impl Output for Vec<u8> {
    fn into_output(self) -> Vec<u8> {
        self
    }
}

/// `Err(message)` is answered as `{"status":"400","body":"<message>"}`, the
/// convention of the reference engine's example functions: the engine itself
/// still answers 200, as it does for every output.
impl Output for Result<String, String> {
    fn into_output(self) -> Vec<u8> {
        self.map_or_else(|message| bad_request(&message), String::into_bytes)
    }
}

/// As for `Result<String, String>`: `Err(message)` is a 400 answer.
impl Output for Result<Vec<u8>, String> {
    fn into_output(self) -> Vec<u8> {
        self.unwrap_or_else(|message| bad_request(&message))
    }
}

/// `{"status":"400","body":"<message>"}`.
pub fn bad_request(message: &str) -> Vec<u8> {
    let mut output = String::from("{\"status\":\"400\",\"body\":");
    push_json_string(&mut output, message);
    output.push('}');
    output.into_bytes()
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

/// Exports `handler: fn(&[u8]) -> impl Output`, which receives its input as
/// bytes (the arguments' JSON on the REST API, the request's body as it is
/// on the provider's route, an image for example), as the string-ABI
/// function `name`. Return a `Vec<u8>` to answer with bytes.
///
/// ```ignore
/// wasm_engine_sdk::export_bytes_function!("reverse", |input: &[u8]| {
///     input.iter().rev().copied().collect::<Vec<u8>>()
/// });
/// ```
#[macro_export]
macro_rules! export_bytes_function {
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
                    $crate::__bytes_abi(ptr, len, |input| {
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
pub unsafe fn __string_abi(ptr: u32, len: u32, body: impl FnOnce(&str) -> Vec<u8>) -> u64 {
    // SAFETY: the caller's guarantee, passed on.
    unsafe {
        __bytes_abi(ptr, len, |input| match core::str::from_utf8(input) {
            Ok(text) => body(text),
            Err(_) => bad_request("input is not UTF-8"),
        })
    }
}

/// As [`__string_abi`], with the input as bytes.
///
/// # Safety
/// `ptr..ptr+len` must be the engine's input bytes in this instance's memory.
#[doc(hidden)]
pub unsafe fn __bytes_abi(ptr: u32, len: u32, body: impl FnOnce(&[u8]) -> Vec<u8>) -> u64 {
    // SAFETY: the caller guarantees the range is the engine-written input.
    let input = unsafe { core::slice::from_raw_parts(ptr as usize as *const u8, len as usize) };
    let output = body(input).leak();
    ((output.as_ptr() as usize as u64) << 32) | output.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn outputs_are_text_or_bytes_and_errors_are_400_answers() {
        assert_eq!(String::from("hi").into_output(), b"hi");
        assert_eq!("hi".into_output(), b"hi");
        assert_eq!(vec![0x89, b'P', 0xff].into_output(), [0x89, b'P', 0xff]);
        assert_eq!(Ok::<Vec<u8>, String>(vec![0xff]).into_output(), [0xff]);
        let error = br#"{"status":"400","body":"no \"x\""}"#;
        assert_eq!(
            Err::<Vec<u8>, String>("no \"x\"".into()).into_output(),
            error
        );
        assert_eq!(
            Err::<String, String>("no \"x\"".into()).into_output(),
            error
        );
    }
}
