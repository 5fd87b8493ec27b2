//! The wasmi side: one shared [`wasmi::Engine`], modules compiled once per
//! deployed function ([`CompiledFunction`]), two linkers built once (plain and
//! WASI), and a fresh `Store` and instance per invocation.
//!
//! This module never touches the network or the data directory: it is handed
//! bytes and arguments and returns output or a [`RuntimeError`].
//!
//! - `abi`: which of the three ABIs a module is called with, decided at deploy.
//! - `invoke`: running one invocation under each ABI.
//! - `error`: [`RuntimeError`].

mod abi;
mod error;
mod invoke;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use wasmi::{CompilationMode, Config, Engine, Linker, Module, StoreLimits, StoreLimitsBuilder};
use wasmi_wasi::WasiCtx;

pub use abi::Abi;
pub use error::RuntimeError;
pub use invoke::read_result as read_string_result;

use crate::function::{FunctionLimits, FunctionName, InvocationArgs};

/// Per-instance memory cap, in bytes (64 MiB). `memory.grow` beyond it fails
/// inside the function, as the spec says.
pub const DEFAULT_MEMORY_LIMIT_BYTES: usize = 64 << 20;

/// Stops library errors from capturing backtraces, unless the operator asked
/// for them with `RUST_LIB_BACKTRACE`. Panics still honour `RUST_BACKTRACE`.
///
/// wasi-common reports `proc_exit`, which every Rust WASI program calls when
/// `main` returns, as an `anyhow` error; with `RUST_BACKTRACE=1` in the
/// environment each of those captures a backtrace, which measured here as
/// the costliest step of a WASI invocation.
///
/// # Safety
/// Changes the environment: call it before any other thread starts.
pub unsafe fn disable_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: the caller guarantees no other thread is running.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}

/// A deployed function's module, compiled once and shared by every
/// invocation (cheap to clone).
#[derive(Clone, Debug)]
pub struct CompiledFunction {
    name: FunctionName,
    module: Module,
    abi: Abi,
    /// Whether a non-WASI module exports `_initialize: () -> ()` (a reactor,
    /// as clang builds with `-mexec-model=reactor`), called before the function.
    calls_initialize: bool,
    /// The largest linear memory any instance of this module has reached,
    /// in bytes (shared by the clones, so by every invocation).
    memory_peak_bytes: Arc<AtomicUsize>,
}

impl CompiledFunction {
    /// How invocations call this function.
    pub fn abi(&self) -> &Abi {
        &self.abi
    }

    /// The largest linear memory an instance of this module has reached so
    /// far, in bytes (its initial memory once it has been called).
    pub fn memory_peak_bytes(&self) -> usize {
        self.memory_peak_bytes.load(Ordering::Relaxed)
    }
}

/// Store data of a non-WASI invocation.
struct PlainState {
    limits: InstanceLimiter,
}

/// Store data of a WASI invocation.
struct WasiState {
    limits: InstanceLimiter,
    wasi: WasiCtx,
}

/// The interpreter: engine, linkers and the server's default limits.
pub struct Runtime {
    engine: Engine,
    plain_linker: Linker<PlainState>,
    wasi_linker: Linker<WasiState>,
    defaults: InvocationLimits,
}

/// The server-wide defaults of [`InvocationLimits`]. Every field documents its default.
#[derive(Clone, Copy, Debug)]
pub struct RuntimeOptions {
    /// Wall-clock time one invocation may run before it is stopped (504).
    /// Defaults to 10 s.
    pub timeout: Duration,
    /// Largest linear memory of one instance, in bytes. Defaults to 64 MiB.
    pub memory_limit_bytes: usize,
    /// Most bytes of result or of stdout/stderr one call may produce (500
    /// beyond). Defaults to 1 MiB.
    pub max_output_bytes: usize,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
            max_output_bytes: 1 << 20,
        }
    }
}

/// The limits one invocation runs under: the server's defaults with a
/// function's own limits (set at deploy) on top.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvocationLimits {
    /// Wall-clock limit of the call (504 beyond).
    pub timeout: Duration,
    /// Largest linear memory, in bytes; `memory.grow` beyond it returns -1.
    pub memory_limit_bytes: usize,
    /// Fuel budget of the call (504 when spent); `None`: only the timeout.
    pub fuel: Option<u64>,
    /// Most result bytes (string ABI) or stdout/stderr bytes (WASI), each.
    pub max_output_bytes: usize,
}

/// Wraps wasmi's [`StoreLimits`] to remember that a growth was refused, so
/// that a trap after it can be reported as hitting the memory limit.
struct InstanceLimiter {
    inner: StoreLimits,
    memory_refused: bool,
    /// Where the function's memory high-water mark is kept, if anywhere.
    memory_peak_bytes: Option<Arc<AtomicUsize>>,
}

impl InstanceLimiter {
    /// The limiter of an invocation of `function`, which also keeps its
    /// memory high-water mark.
    fn for_function(function: &CompiledFunction, memory_limit_bytes: usize) -> Self {
        Self {
            memory_peak_bytes: Some(function.memory_peak_bytes.clone()),
            ..Self::new(memory_limit_bytes)
        }
    }

    fn new(memory_limit_bytes: usize) -> Self {
        Self {
            inner: StoreLimitsBuilder::new()
                .memory_size(memory_limit_bytes)
                .table_elements(MAX_TABLE_ELEMENTS)
                .instances(1)
                .memories(1)
                .tables(4)
                .build(),
            memory_refused: false,
            memory_peak_bytes: None,
        }
    }
}

/// Largest table of one instance, in elements.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl wasmi::ResourceLimiter for InstanceLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        self.memory_refused |= !allowed;
        if let (true, Some(peak)) = (allowed, &self.memory_peak_bytes) {
            peak.fetch_max(desired, Ordering::Relaxed);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new(RuntimeOptions::default())
    }
}

impl Runtime {
    pub fn new(options: RuntimeOptions) -> Self {
        let mut config = Config::default();
        // Fuel metering gives an interpreter a wall-clock deadline: calls run
        // in fuel slices and the clock is checked between them.
        config.consume_fuel(true);
        // Validate the whole module at deploy, translate each function on its
        // first call: deploys stay fast even for large modules.
        config.compilation_mode(CompilationMode::LazyTranslation);
        let engine = Engine::new(&config);
        let plain_linker = Linker::new(&engine);
        let mut wasi_linker = Linker::new(&engine);
        wasmi_wasi::add_to_linker(&mut wasi_linker, |state: &mut WasiState| &mut state.wasi)
            .expect("WASI preview 1 definitions are added to an empty linker once");
        Self {
            engine,
            plain_linker,
            wasi_linker,
            defaults: InvocationLimits {
                timeout: options.timeout,
                memory_limit_bytes: options.memory_limit_bytes,
                fuel: None,
                max_output_bytes: options.max_output_bytes,
            },
        }
    }

    /// The limits a function with these deploy-time limits runs under.
    pub fn limits_for(&self, limits: &FunctionLimits) -> InvocationLimits {
        InvocationLimits {
            timeout: limits
                .timeout_ms
                .map_or(self.defaults.timeout, Duration::from_millis),
            memory_limit_bytes: limits
                .memory_limit_mb
                .map_or(self.defaults.memory_limit_bytes, |mb| (mb as usize) << 20),
            fuel: limits.fuel,
            max_output_bytes: self.defaults.max_output_bytes,
        }
    }

    /// Compiles and validates `wasm` for `function`, choosing its ABI.
    ///
    /// # Errors
    /// A [`RuntimeError`] when the module is invalid, imports what the engine
    /// does not provide, or has no export of a supported shape.
    pub fn prepare(
        &self,
        function: &FunctionName,
        wasi_cap: bool,
        wasm: &[u8],
    ) -> Result<CompiledFunction, RuntimeError> {
        let module =
            Module::new(&self.engine, wasm).map_err(|error| RuntimeError::InvalidModule {
                reason: error.to_string(),
            })?;
        let abi = if wasi_cap {
            self.check_wasi_imports(&module)?;
            abi::check_wasi_exports(&module, function.as_str())?;
            Abi::Wasi
        } else {
            abi::check_no_imports(&module, function.as_str())?;
            abi::classify_export(&module, function.as_str(), wasm)?
        };
        let calls_initialize = !wasi_cap
            && matches!(
                module.get_export("_initialize"),
                Some(wasmi::ExternType::Func(ty)) if ty.params().is_empty() && ty.results().is_empty()
            );
        Ok(CompiledFunction {
            name: function.clone(),
            module,
            abi,
            calls_initialize,
            memory_peak_bytes: Arc::default(),
        })
    }

    /// Every import must come from `wasi_snapshot_preview1` and match a
    /// function the WASI linker defines. The linker does not expose its host
    /// functions' types, so this instantiates the module once in a throwaway
    /// store (which also runs a wasm start section, if the module has one).
    fn check_wasi_imports(&self, module: &Module) -> Result<(), RuntimeError> {
        if let Some(import) = module
            .imports()
            .find(|import| import.module() != abi::WASI_MODULE)
        {
            return Err(RuntimeError::UnsupportedImport {
                module: import.module().to_owned(),
                name: import.name().to_owned(),
                wasi_cap: true,
            });
        }
        let mut store = wasmi::Store::new(
            &self.engine,
            WasiState {
                limits: InstanceLimiter::new(self.defaults.memory_limit_bytes),
                wasi: wasmi_wasi::WasiCtxBuilder::new().build(),
            },
        );
        store.limiter(|state| &mut state.limits);
        store.set_fuel(u64::MAX).expect("the engine meters fuel");
        self.wasi_linker
            .instantiate_and_start(&mut store, module)
            .map(drop)
            .map_err(|error| RuntimeError::WasiLinkFailed {
                reason: error.to_string(),
            })
    }

    /// Runs one invocation of `function` in a fresh instance and returns its output.
    ///
    /// # Errors
    /// [`RuntimeError::BadArguments`] when `args` do not fit the function;
    /// otherwise a trap, a non-zero exit, or output the engine cannot read.
    pub fn invoke(
        &self,
        function: &CompiledFunction,
        limits: &InvocationLimits,
        args: &InvocationArgs,
    ) -> Result<String, RuntimeError> {
        self.invoke_keeping_stderr(function, limits, args, &mut Vec::new())
    }

    /// Like [`Runtime::invoke`], and appends what a WASI function wrote to
    /// stderr (up to the output cap, whether the call succeeded or not) to
    /// `stderr`; the other ABIs have no stderr.
    ///
    /// # Errors
    /// As [`Runtime::invoke`].
    pub fn invoke_keeping_stderr(
        &self,
        function: &CompiledFunction,
        limits: &InvocationLimits,
        args: &InvocationArgs,
        stderr: &mut Vec<u8>,
    ) -> Result<String, RuntimeError> {
        match &function.abi {
            Abi::String => invoke::string_abi(self, function, limits, args),
            Abi::Numeric {
                params,
                param_names,
            } => invoke::numeric_abi(self, function, limits, params, param_names.as_deref(), args),
            Abi::Wasi => invoke::wasi(self, function, limits, args, stderr),
        }
    }
}
