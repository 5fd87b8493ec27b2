//! [`RuntimeError`]: why a module cannot be deployed or an invocation failed.

use std::fmt;

use crate::error::ErrorKind;

/// A failure validating a module or running an invocation.
#[derive(Debug)]
pub enum RuntimeError {
    /// The bytes are not a valid WebAssembly module.
    InvalidModule { reason: String },
    /// A module that imports WASI was deployed with `wasi_cap: false`.
    NeedsWasi { function: String },
    /// The module imports something the engine does not provide.
    UnsupportedImport {
        module: String,
        name: String,
        wasi_cap: bool,
    },
    /// A WASI module's imports do not match WASI preview 1 as the engine provides it.
    WasiLinkFailed { reason: String },
    /// The module has no export named like the function.
    MissingExport {
        function: String,
        exports: Vec<String>,
    },
    /// The export's type fits none of the supported ABIs.
    UnsupportedSignature { function: String, signature: String },
    /// The string ABI or WASI needs an exported `memory`.
    MissingMemory { function: String },
    /// A WASI function does not export `_start: () -> ()`.
    MissingStart { function: String },
    /// The module's start function did not finish within the instantiation
    /// fuel bound when it was tried at deploy (or restore).
    StartDidNotFinish { fuel: u64 },
    /// The module's start function trapped or exited when it was tried at
    /// deploy (or restore).
    StartFailed { reason: String },
    /// The invocation arguments do not fit the function.
    BadArguments { reason: String },
    /// The instance could not be created (its start function trapped, or a
    /// resource limit was hit while setting it up).
    Instantiation { function: String, reason: String },
    /// The call ran past its wall-clock limit and was stopped.
    Timeout { function: String, timeout_ms: u64 },
    /// The call spent its fuel budget and was stopped.
    FuelExhausted { function: String, fuel: u64 },
    /// The function trapped after `memory.grow` was refused at its limit.
    MemoryLimit {
        function: String,
        limit_bytes: u64,
        reason: String,
    },
    /// The result, stdout or stderr grew past the output cap.
    OutputTooLarge {
        function: String,
        stream: &'static str,
        limit_bytes: usize,
    },
    /// The function trapped.
    Trap { function: String, reason: String },
    /// A WASI function exited with a non-zero code.
    NonZeroExit {
        function: String,
        exit_code: i32,
        stderr_tail: String,
    },
    /// The string ABI returned a `(ptr, len)` outside the instance's memory.
    OutputOutOfBounds {
        function: String,
        ptr: u32,
        len: u32,
        memory_bytes: usize,
    },
    /// The module imports `wasm_engine` but was deployed without `calls`.
    CallsNotListed { function: String },
    /// A function that is not a WASI command was deployed with `env`.
    EnvWithoutWasi { function: String },
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHAPES: &str = "supported shapes: (i32, i32) -> (i32, i32) with an exported memory (string ABI), or parameters and results that are all i32/i64/f32/f64 (numeric ABI); or deploy a WASI command module with wasi_cap: true";
        match self {
            Self::InvalidModule { reason } => {
                write!(
                    f,
                    "the image's .wasm is not a valid WebAssembly module: {reason}"
                )
            }
            Self::NeedsWasi { function } => write!(
                f,
                "function {function} imports WASI (wasi_snapshot_preview1); deploy it with wasi_cap: true"
            ),
            Self::UnsupportedImport {
                module,
                name,
                wasi_cap,
            } => {
                write!(
                    f,
                    "the module imports {module}::{name}, which the engine does not provide"
                )?;
                if *wasi_cap {
                    write!(
                        f,
                        "; WASI functions may import only wasi_snapshot_preview1 and wasm_engine functions"
                    )
                } else {
                    write!(
                        f,
                        "; functions deployed with wasi_cap: false may import only wasm_engine (calls to other functions), and with wasi_cap: true also wasi_snapshot_preview1"
                    )
                }
            }
            Self::WasiLinkFailed { reason } => write!(
                f,
                "the module's imports do not match the functions the engine provides (WASI preview 1, and wasm_engine's call and result): {reason}"
            ),
            Self::MissingExport { function, exports } => write!(
                f,
                "the module has no exported function named {function} (its exports: {}); export a function named like the function or deploy under the export's name",
                if exports.is_empty() {
                    "none".to_owned()
                } else {
                    exports.join(", ")
                }
            ),
            Self::UnsupportedSignature {
                function,
                signature,
            } => write!(
                f,
                "export {function} has the type {signature}, which no ABI supports; {SHAPES}"
            ),
            Self::MissingMemory { function } => write!(
                f,
                "function {function} uses the string ABI or WASI but the module exports no memory named \"memory\""
            ),
            Self::MissingStart { function } => write!(
                f,
                "WASI function {function} does not export _start: () -> (); build it as a command (a binary with main), not a library or reactor"
            ),
            Self::StartDidNotFinish { fuel } => write!(
                f,
                "the module's start function did not finish within {fuel} units of fuel; it runs when every call's instance is created, so it must return promptly"
            ),
            Self::StartFailed { reason } => write!(
                f,
                "the module's start function failed when the module was instantiated: {reason}"
            ),
            Self::BadArguments { reason } => f.write_str(reason),
            Self::Instantiation { function, reason } => {
                write!(f, "function {function} could not be instantiated: {reason}")
            }
            Self::Timeout {
                function,
                timeout_ms,
            } => write!(
                f,
                "function {function} did not finish within the {timeout_ms} ms time limit and was stopped (its timeout_ms at deploy, else the server's --timeout-ms)"
            ),
            Self::FuelExhausted { function, fuel } => write!(
                f,
                "function {function} used up its fuel budget of {fuel} units (the fuel set at deploy) and was stopped"
            ),
            Self::MemoryLimit {
                function,
                limit_bytes,
                reason,
            } => write!(
                f,
                "function {function} hit its memory limit of {} MiB (memory_limit_mb at deploy, else --memory-limit-mb): memory.grow was refused and it then failed: {reason}",
                limit_bytes >> 20
            ),
            Self::OutputTooLarge {
                function,
                stream,
                limit_bytes,
            } => write!(
                f,
                "function {function}'s {stream} is larger than the {limit_bytes} byte output limit (--max-output-bytes); it was cut off"
            ),
            Self::Trap { function, reason } => write!(f, "function {function} trapped: {reason}"),
            Self::NonZeroExit {
                function,
                exit_code,
                stderr_tail,
            } => {
                write!(f, "function {function} exited with code {exit_code}")?;
                if stderr_tail.is_empty() {
                    write!(f, " (stderr was empty)")
                } else {
                    write!(f, "; stderr: {stderr_tail}")
                }
            }
            Self::OutputOutOfBounds {
                function,
                ptr,
                len,
                memory_bytes,
            } => write!(
                f,
                "function {function} returned (ptr {ptr}, len {len}), which lies outside its {memory_bytes} byte memory"
            ),
            Self::CallsNotListed { function } => write!(
                f,
                "function {function} imports wasm_engine (calls to other functions) but was deployed without \"calls\"; list the functions it may call: \"calls\": [\"name\", ...]"
            ),
            Self::EnvWithoutWasi { function } => write!(
                f,
                "function {function} was deployed with \"env\", but only WASI functions (wasi_cap: true) see environment variables"
            ),
        }
    }
}

impl std::error::Error for RuntimeError {}

impl RuntimeError {
    /// What kind of failure this is: a module that cannot be deployed
    /// ([`ErrorKind::Unusable`]), arguments that do not fit
    /// ([`ErrorKind::BadRequest`]), a call stopped at its limit
    /// ([`ErrorKind::Stopped`]), or a call that failed
    /// ([`ErrorKind::FunctionFailed`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidModule { .. }
            | Self::NeedsWasi { .. }
            | Self::UnsupportedImport { .. }
            | Self::WasiLinkFailed { .. }
            | Self::MissingExport { .. }
            | Self::UnsupportedSignature { .. }
            | Self::MissingMemory { .. }
            | Self::MissingStart { .. }
            | Self::StartDidNotFinish { .. }
            | Self::StartFailed { .. }
            | Self::CallsNotListed { .. }
            | Self::EnvWithoutWasi { .. } => ErrorKind::Unusable,
            Self::BadArguments { .. } => ErrorKind::BadRequest,
            Self::Timeout { .. } | Self::FuelExhausted { .. } => ErrorKind::Stopped,
            Self::Instantiation { .. }
            | Self::Trap { .. }
            | Self::MemoryLimit { .. }
            | Self::OutputTooLarge { .. }
            | Self::NonZeroExit { .. }
            | Self::OutputOutOfBounds { .. } => ErrorKind::FunctionFailed,
        }
    }
}
