//! Calls to other deployed functions through the engine's host module
//! `wasm_engine` (see `docs/abi.md`, "Calls between functions").
//!
//! [`call`] runs the function `name` with `input` (what it would get as an
//! HTTP invocation's body: the arguments' JSON for string and numeric
//! functions, stdin for WASI ones) and returns its output, or a
//! [`CallError`]. The caller must be deployed with `"calls": [name, ...]`.
//! A module that never calls [`call`] imports nothing: the linker drops the
//! unused imports.

use alloc::string::String;
use alloc::vec::Vec;

#[cfg(target_family = "wasm")]
#[link(wasm_import_module = "wasm_engine")]
unsafe extern "C" {
    #[link_name = "call"]
    fn host_call(
        name_ptr: *const u8,
        name_len: usize,
        input_ptr: *const u8,
        input_len: usize,
    ) -> i64;
    #[link_name = "result"]
    fn host_result(handle: i64, out_ptr: *mut u8, out_cap: usize) -> i64;
}

/// Outside WebAssembly there is no engine: every call is refused.
#[cfg(not(target_family = "wasm"))]
unsafe fn host_call(_: *const u8, _: usize, _: *const u8, _: usize) -> i64 {
    -2
}

#[cfg(not(target_family = "wasm"))]
unsafe fn host_result(_: i64, _: *mut u8, _: usize) -> i64 {
    -9
}

/// Why a call returned no output: the engine's negative codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// -1: the callee is listed in `calls` but not deployed.
    NotDeployed,
    /// -2: the callee is not in the caller's `calls`.
    NotAllowed,
    /// -3: the callee trapped, exited non-zero or hit its memory limit.
    Failed,
    /// -4: the callee ran out of time (its own, or what the caller had left).
    TimedOut,
    /// -5: the callee ran out of fuel (its own, or what the caller had left).
    OutOfFuel,
    /// -6: the call would nest deeper than the engine's `--max-call-depth`.
    DepthExceeded,
    /// -7: the callee is already on the call stack.
    Cycle,
    /// -8: the callee's output passed the engine's output limit.
    OutputTooLarge,
    /// -9, -10, -12: a handle, pointer or result count the engine refused
    /// (this wrapper never causes them).
    Engine(i64),
    /// -11: the callee refused its input (a numeric function needs a JSON
    /// object of numbers as strings).
    BadInput,
    /// -13: the input is larger than a request body may be (the engine's
    /// `--max-body-bytes`).
    InputTooLarge,
}

impl CallError {
    fn from_code(code: i64) -> Self {
        match code {
            -1 => Self::NotDeployed,
            -2 => Self::NotAllowed,
            -3 => Self::Failed,
            -4 => Self::TimedOut,
            -5 => Self::OutOfFuel,
            -6 => Self::DepthExceeded,
            -7 => Self::Cycle,
            -8 => Self::OutputTooLarge,
            -11 => Self::BadInput,
            -13 => Self::InputTooLarge,
            other => Self::Engine(other),
        }
    }

    /// A short description, for an answer or a log line.
    pub fn describe(self) -> &'static str {
        match self {
            Self::NotDeployed => "not deployed",
            Self::NotAllowed => "not allowed (not in calls)",
            Self::Failed => "failed",
            Self::TimedOut => "timed out",
            Self::OutOfFuel => "out of fuel",
            Self::DepthExceeded => "calls nested too deep",
            Self::Cycle => "already on the call stack",
            Self::OutputTooLarge => "output too large",
            Self::Engine(_) => "refused by the engine",
            Self::BadInput => "refused its input",
            Self::InputTooLarge => "input too large",
        }
    }
}

/// Calls the deployed function `name` with `input` and returns its output
/// as text (bytes that are not UTF-8 replaced by U+FFFD; [`call_bytes`]
/// keeps them).
///
/// # Errors
/// The [`CallError`] the engine answered with.
pub fn call(name: &str, input: &[u8]) -> Result<String, CallError> {
    let output = call_bytes(name, input)?;
    Ok(String::from_utf8(output)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned()))
}

/// Calls the deployed function `name` with `input` and returns its output
/// as the callee wrote it: any bytes (a WASI callee's stdout less one
/// trailing newline when it is text, a string callee's result).
///
/// # Errors
/// The [`CallError`] the engine answered with.
pub fn call_bytes(name: &str, input: &[u8]) -> Result<Vec<u8>, CallError> {
    // SAFETY: both ranges are live slices of this instance's memory.
    let handle = unsafe { host_call(name.as_ptr(), name.len(), input.as_ptr(), input.len()) };
    if handle < 0 {
        return Err(CallError::from_code(handle));
    }
    // A capacity of 0 asks for the size (an empty output is read, and its
    // handle freed, at once).
    // SAFETY: nothing is written with a capacity of 0.
    let size = unsafe { host_result(handle, core::ptr::null_mut(), 0) };
    let size = usize::try_from(size).map_err(|_| CallError::from_code(size))?;
    if size == 0 {
        return Ok(Vec::new());
    }
    let mut output: Vec<u8> = Vec::with_capacity(size);
    // SAFETY: the engine writes at most `size` bytes into the spare capacity.
    let written = unsafe { host_result(handle, output.as_mut_ptr(), size) };
    let written = usize::try_from(written).map_err(|_| CallError::from_code(written))?;
    // SAFETY: the engine wrote exactly `written <= size` bytes.
    unsafe { output.set_len(written.min(size)) };
    Ok(output)
}
