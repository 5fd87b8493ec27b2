//! The wasmi side: one shared [`wasmi::Engine`], modules compiled once per
//! deployed function ([`CompiledFunction`]), two linkers built once (plain and
//! WASI), and a fresh `Store` and instance per invocation.
//!
//! This module never touches the network or the data directory: it is handed
//! bytes and arguments and returns output or a [`RuntimeError`].
//!
//! - `abi`: which of the three ABIs a module is called with, decided at deploy.
//! - `invoke`: running one invocation under each ABI.
//! - `secret_files`: the read-only in-memory directory of a WASI call's secrets.
//! - `host`: the host module `wasm_engine` (calls between functions).
//! - `sched`: WASI's scheduler, whose sleeps end at the call's deadline.
//! - `error`: [`RuntimeError`].
//! - `memory_pool`: linear memories reused between calls, reset to zero.
//! - `warm`: translating deployed modules in the background (one thread).

mod abi;
mod error;
mod host;
mod invoke;
mod memory_pool;
mod sched;
mod secret_files;
mod warm;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmi::{
    CompilationMode, Config, CustomFuelCosts, Engine, Linker, Module, StoreLimits,
    StoreLimitsBuilder,
};
use wasmi_wasi::WasiCtx;

pub(crate) use abi::{Abi, StringReturn};
pub(crate) use error::RuntimeError;
use host::HOST_MODULE;
pub(crate) use host::{
    CallSetup, Callees, DEFAULT_MAX_CALL_DEPTH, MAX_CALL_DEPTH_LIMIT, Run, Within,
};
#[cfg(fuzzing)]
pub use invoke::read_result as read_string_result;

use crate::function::{FunctionLimits, FunctionName, Input};
use warm::{WarmSlot, Warmer};

/// `mib` MiB in bytes. Sizes are `u64` until they reach wasmi, where they
/// are clamped to the target's address space ([`usize_saturating`]): on a
/// 32-bit board 4096 MiB is more than `usize` holds, and a `usize` shifted
/// by 20 wrapped to 0 and refused every memory.
pub(crate) fn bytes_from_mib(mib: u64) -> u64 {
    mib.saturating_mul(1 << 20)
}

/// A byte count from a `u64` setting, clamped to what this target can
/// address (a cap beyond the address space caps nothing).
pub(crate) fn usize_saturating(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// Per-instance memory cap, in bytes (64 MiB). `memory.grow` beyond it fails
/// inside the function, as the spec says.
pub(crate) const DEFAULT_MEMORY_LIMIT_BYTES: u64 = 64 << 20;

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
    /// Whether the module imports from [`HOST_MODULE`] (calls other functions).
    imports_calls: bool,
    /// The same module translated in the background (`warm`), once ready.
    warm: Arc<WarmSlot>,
}

impl CompiledFunction {
    /// How invocations call this function.
    pub fn abi(&self) -> &Abi {
        &self.abi
    }

    /// The ABI and the export's type, for logs: `numeric ABI gcd(i32, i32) -> i32`.
    pub fn describe_abi(&self) -> String {
        self.abi.describe(&self.module, self.name.as_str())
    }

    /// Whether the module imports `wasm_engine` (`call`, `result`): it
    /// must then be deployed with the functions it may call.
    pub fn imports_calls(&self) -> bool {
        self.imports_calls
    }

    /// The largest linear memory an instance of this module has reached so
    /// far, in bytes (its initial memory once it has been called).
    pub fn memory_peak_bytes(&self) -> usize {
        self.memory_peak_bytes.load(Ordering::Relaxed)
    }

    /// Stops translating this function in the background: it was deleted
    /// or replaced (calls still in flight finish on whichever module they
    /// started with).
    pub fn stop_warming(&self) {
        self.warm.cancel();
    }
}

/// Store data of a non-WASI invocation.
struct PlainState {
    limiter: InstanceLimiter,
    host: host::HostState,
}

/// Store data of a WASI invocation.
struct WasiState {
    limiter: InstanceLimiter,
    wasi: WasiCtx,
    host: host::HostState,
}

/// Store data that carries an [`InstanceLimiter`] (every invocation's does).
trait Limited: 'static {
    fn limiter(&mut self) -> &mut InstanceLimiter;
}

impl Limited for PlainState {
    fn limiter(&mut self) -> &mut InstanceLimiter {
        &mut self.limiter
    }
}

impl Limited for WasiState {
    fn limiter(&mut self) -> &mut InstanceLimiter {
        &mut self.limiter
    }
}

impl host::Hosted for PlainState {
    fn host(&mut self) -> &mut host::HostState {
        &mut self.host
    }
}

impl host::Hosted for WasiState {
    fn host(&mut self) -> &mut host::HostState {
        &mut self.host
    }
}

/// An engine and the two linkers built on it (wasmi asserts that a call's
/// store, linker and module share one engine).
struct Linked {
    engine: Engine,
    plain_linker: Linker<PlainState>,
    wasi_linker: Linker<WasiState>,
}

impl Linked {
    fn new(engine: Engine) -> Self {
        #[cfg_attr(not(feature = "calls"), allow(unused_mut))]
        let mut plain_linker = Linker::new(&engine);
        let mut wasi_linker = Linker::new(&engine);
        wasmi_wasi::add_to_linker(&mut wasi_linker, |state: &mut WasiState| &mut state.wasi)
            .expect("WASI preview 1 definitions are added to an empty linker once");
        #[cfg(feature = "calls")]
        {
            host::add_to_linker(&mut plain_linker);
            host::add_to_linker(&mut wasi_linker);
        }
        Self {
            engine,
            plain_linker,
            wasi_linker,
        }
    }
}

/// The interpreter: engines, linkers and the server's default limits.
pub struct Runtime {
    /// Lazy translation: what deploys validate with and what a function's
    /// calls run on until its warm module is ready.
    lazy: Linked,
    /// Eager translation, the same configuration otherwise: the engine of
    /// warm modules (`warm`, made with the first job) and its linkers,
    /// built on the first call of a warm module.
    warm: OnceLock<Linked>,
    warmer: Warmer,
    defaults: CallLimits,
    max_call_depth: usize,
    max_call_input_bytes: u64,
}

/// The server-wide defaults of [`CallLimits`]. Every field documents its default.
#[derive(Clone, Copy, Debug)]
pub struct RuntimeOptions {
    /// Wall-clock time one invocation may run before it is stopped (504).
    /// Defaults to 10 s.
    pub timeout: Duration,
    /// Largest linear memory of one instance, in bytes. Defaults to 64 MiB.
    pub memory_limit_bytes: u64,
    /// Most bytes of result or of stdout/stderr one call may produce (500
    /// beyond). Defaults to 1 MiB.
    pub max_output_bytes: usize,
    /// How deep calls between functions may nest below the function a
    /// request invoked (`--max-call-depth`). Defaults to 8.
    pub max_call_depth: usize,
    /// Largest input a `wasm_engine::call` may hand its callee, in bytes
    /// (the caller gets -13 beyond). The server sets it to
    /// `--max-body-bytes`, so a callee never gets an input a request could
    /// not give it. Defaults to 1 MiB.
    pub max_call_input_bytes: u64,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
            max_output_bytes: 1 << 20,
            max_call_depth: DEFAULT_MAX_CALL_DEPTH,
            max_call_input_bytes: 1 << 20,
        }
    }
}

/// The limits one invocation runs under: the server's defaults with a
/// function's own limits (set at deploy) on top.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallLimits {
    /// Wall-clock limit of the call (504 beyond).
    pub timeout: Duration,
    /// Largest linear memory, in bytes; `memory.grow` beyond it returns -1.
    pub memory_limit_bytes: u64,
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
    fn for_function(function: &CompiledFunction, memory_limit_bytes: u64) -> Self {
        Self {
            memory_peak_bytes: Some(function.memory_peak_bytes.clone()),
            ..Self::new(memory_limit_bytes)
        }
    }

    fn new(memory_limit_bytes: u64) -> Self {
        Self {
            inner: StoreLimitsBuilder::new()
                .memory_size(usize_saturating(memory_limit_bytes))
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

/// wasmi's dynamic fuel costs, except that translating and validating a
/// function costs nothing.
///
/// With lazy translation a function is translated on its first call, and
/// wasmi charges that to the store's fuel. When the fuel slice in progress
/// (`invoke::FUEL_SLICE`) has less left than a large function's translation
/// costs, wasmi does not suspend the call as it does for instructions: it
/// fails it with a non-resumable error. So a correct call of a large module
/// failed or not depending on where in a slice its first calls fell. The
/// work is bounded without fuel: the module was validated at deploy, and a
/// function is translated once per module, not once per call.
const FUEL_COSTS: CustomFuelCosts = CustomFuelCosts {
    // wasmi's default: one unit of fuel per 64 bytes copied or filled.
    bytes_copied_per_fuel: 64,
    fuel_per_bytes_translated: 0,
    fuel_per_bytes_validated: 0,
};

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
        config.fuel_cost(FUEL_COSTS);
        // Validate the whole module at deploy, translate each function on its
        // first call: deploys stay fast even for large modules.
        config.compilation_mode(CompilationMode::LazyTranslation);
        // Every memory a call may have fits in one pooled region; a function
        // allowed more than the server's default moves into a `Vec` when it
        // grows past it.
        memory_pool::install(options.memory_limit_bytes);
        let lazy = Linked::new(Engine::new(&config));
        // The warm engine: made with the first module to warm, so an idle
        // server without functions has one engine only.
        config.compilation_mode(CompilationMode::Eager);
        Self {
            lazy,
            warm: OnceLock::new(),
            warmer: Warmer::new(config),
            defaults: CallLimits {
                timeout: options.timeout,
                memory_limit_bytes: options.memory_limit_bytes,
                fuel: None,
                max_output_bytes: options.max_output_bytes,
            },
            max_call_depth: options.max_call_depth,
            max_call_input_bytes: options.max_call_input_bytes,
        }
    }

    /// The limits a function with these deploy-time limits runs under.
    pub fn limits_for(&self, limits: &FunctionLimits) -> CallLimits {
        CallLimits {
            timeout: limits
                .timeout_ms
                .map_or(self.defaults.timeout, Duration::from_millis),
            memory_limit_bytes: limits
                .memory_limit_mb
                .map_or(self.defaults.memory_limit_bytes, bytes_from_mib),
            fuel: limits.fuel,
            max_output_bytes: self.defaults.max_output_bytes,
        }
    }

    /// Whether `wasm` imports anything from WASI (`wasi_snapshot_preview1`):
    /// how a deploy that does not say (an OpenFaaS deploy) chooses
    /// `wasi_cap`. It reads only the import section; a module it cannot read
    /// is `false`, and [`Runtime::prepare`] then says what is wrong with it.
    pub(crate) fn imports_wasi(wasm: &[u8]) -> bool {
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            match payload {
                Ok(wasmparser::Payload::ImportSection(imports)) => {
                    return imports.into_iter().any(|import| {
                        import.is_ok_and(|import| import.module == abi::WASI_MODULE)
                    });
                }
                Ok(wasmparser::Payload::CodeSectionStart { .. }) | Err(_) => return false,
                Ok(_) => {}
            }
        }
        false
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
            Module::new(&self.lazy.engine, wasm).map_err(|error| RuntimeError::InvalidModule {
                reason: error.to_string(),
            })?;
        let abi = if wasi_cap {
            Self::check_wasi_import_modules(&module)?;
            abi::check_wasi_exports(&module, function.as_str())?;
            Abi::Wasi
        } else {
            abi::check_no_imports(&module, function.as_str())?;
            abi::classify_export(&module, function.as_str(), wasm)?
        };
        self.instantiate_once(&module, wasi_cap)?;
        let imports_calls = module
            .imports()
            .any(|import| import.module() == HOST_MODULE);
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
            imports_calls,
            warm: Arc::default(),
        })
    }

    /// Translates `function`'s module (`wasm`, as [`Self::prepare`] was
    /// given it) in the background; its calls use that translation once it
    /// is ready. Returns at once; the work may be dropped when the queue is
    /// full (`warm`).
    pub fn warm(&self, function: &CompiledFunction, wasm: Vec<u8>) {
        self.warmer.enqueue(&function.name, &function.warm, wasm);
    }

    /// The engine, linkers and module a call of `function` runs on: the
    /// warm module once it is ready, else the lazy one.
    fn code_of<'a>(&'a self, function: &'a CompiledFunction) -> (&'a Linked, &'a Module) {
        match function.warm.module() {
            Some(module) => (
                self.warm
                    .get_or_init(|| Linked::new(self.warmer.engine().clone())),
                module,
            ),
            None => {
                log::debug!(
                    "function {} called before its background translation finished: its code translates lazily",
                    function.name
                );
                (&self.lazy, &function.module)
            }
        }
    }

    /// Every import must come from `wasi_snapshot_preview1` or
    /// `wasm_engine`; whether each matches a function the WASI linker
    /// defines is checked by [`Self::instantiate_once`] (the linker does not
    /// expose its host functions' types).
    fn check_wasi_import_modules(module: &Module) -> Result<(), RuntimeError> {
        match module
            .imports()
            .find(|import| import.module() != abi::WASI_MODULE && !host::provided(import.module()))
        {
            Some(import) => Err(RuntimeError::UnsupportedImport {
                module: import.module().to_owned(),
                name: import.name().to_owned(),
                wasi_cap: true,
            }),
            None => Ok(()),
        }
    }

    /// Instantiates the module once in a throwaway store, as every call will:
    /// this links its imports and runs its start function, if it has one,
    /// under the same fuel bound calls have ([`invoke::INSTANTIATION_FUEL`]),
    /// so a module whose start function never finishes, or traps, is refused
    /// at deploy (and at restore) instead of failing every call or holding
    /// the deploy forever. A WASI sleep in it ends at the server's
    /// `--timeout-ms` and refuses the module too.
    fn instantiate_once(&self, module: &Module, wasi_cap: bool) -> Result<(), RuntimeError> {
        let limiter = InstanceLimiter::new(self.defaults.memory_limit_bytes);
        let expired = sched::Expired::default();
        let outcome = if wasi_cap {
            let deadline = std::time::Instant::now() + self.defaults.timeout;
            let wasi = sched::wasi_context(deadline, expired.clone());
            let host = host::HostState::inert();
            let mut store = invoke::new_store(
                &self.lazy.engine,
                WasiState {
                    limiter,
                    wasi,
                    host,
                },
            );
            self.lazy
                .wasi_linker
                .instantiate_and_start(&mut store, module)
                .map(drop)
        } else {
            let host = host::HostState::inert();
            let mut store = invoke::new_store(&self.lazy.engine, PlainState { limiter, host });
            self.lazy
                .plain_linker
                .instantiate_and_start(&mut store, module)
                .map(drop)
        };
        outcome.map_err(|error| {
            if matches!(error.kind(), wasmi::errors::ErrorKind::Linker(_)) {
                RuntimeError::WasiLinkFailed {
                    reason: error.to_string(),
                }
            } else if error.as_trap_code() == Some(wasmi::TrapCode::OutOfFuel) {
                RuntimeError::StartDidNotFinish {
                    fuel: invoke::INSTANTIATION_FUEL,
                }
            } else if expired.is_set() {
                RuntimeError::StartFailed {
                    reason: format!(
                        "it slept past the server's {} ms time limit (--timeout-ms)",
                        self.defaults.timeout.as_millis()
                    ),
                }
            } else {
                RuntimeError::StartFailed {
                    reason: error.to_string(),
                }
            }
        })
    }

    /// Runs one invocation of `function` in a fresh instance, with no
    /// environment and no callees, and returns its output.
    ///
    /// # Errors
    /// [`RuntimeError::BadArguments`] when `input` does not fit the function;
    /// otherwise a trap, a non-zero exit, or output the engine cannot read.
    pub fn invoke(
        &self,
        function: &CompiledFunction,
        limits: &CallLimits,
        input: &Input,
    ) -> Result<Vec<u8>, RuntimeError> {
        let setup = CallSetup {
            env: &[],
            secrets: &[],
            calls: &Arc::from([]),
            callees: None,
            call_id: &crate::call::CallId::generate(),
        };
        self.run(function, limits, input, &setup, None, &mut Vec::new())
            .output
    }

    /// Runs one invocation of `function` in a fresh instance with what
    /// `setup` gives it: the call a request made (`within: None`), or a
    /// nested one that a `wasm_engine::call` made, bounded by the caller's
    /// deadline and fuel (`within`). What a WASI function wrote to stderr
    /// (up to the output cap, whether the call succeeded or not) is
    /// appended to `stderr`; the other ABIs have no stderr.
    pub fn run(
        &self,
        function: &CompiledFunction,
        limits: &CallLimits,
        input: &Input,
        setup: &CallSetup<'_>,
        within: Option<&Within>,
        stderr: &mut Vec<u8>,
    ) -> Run {
        let invocation = invoke::Invocation::start(self, function, limits, setup, within);
        let budget = invocation.budget();
        let granted = budget.get();
        let output = match &function.abi {
            Abi::String(returns) => invocation.string(*returns, input),
            Abi::Numeric {
                params,
                param_names,
            } => invocation.numeric(params, param_names.as_deref(), input),
            Abi::Wasi => invocation.wasi(input, setup.secrets, stderr),
        };
        let fuel_used = match (granted, budget.get()) {
            (Some(granted), Some(left)) => granted.saturating_sub(left),
            _ => 0,
        };
        Run { output, fuel_used }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(name: &str) -> FunctionName {
        FunctionName::new(name).expect("a valid function name")
    }

    fn args(pairs: &[(&str, &str)]) -> Input {
        Input::Args(crate::function::InvocationArgs::from_pairs(
            pairs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        ))
    }

    /// A module whose export `run(burn, which)` spins `burn` loop iterations
    /// and then calls one of `count` large functions, each about
    /// `100 KB` of code, so that its lazy translation is a large step.
    fn large_functions_module(count: usize) -> Vec<u8> {
        let mut wat = String::from("(module\n");
        for index in 0..count {
            wat.push_str(&format!("(func $big{index} (param i32) (result i32)\n"));
            for step in 0..6_000 {
                wat.push_str(&format!(
                    "local.get 0 i32.const {} i32.add local.set 0\n",
                    step % 7 + index
                ));
            }
            wat.push_str("local.get 0)\n");
        }
        wat.push_str(
            "(func (export \"run\") (param $burn i32) (param $which i32) (result i32)
               (block $done (loop $spin
                 (br_if $done (i32.eqz (local.get $burn)))
                 (local.set $burn (i32.sub (local.get $burn) (i32.const 1)))
                 (br $spin)))\n",
        );
        for index in 0..count {
            wat.push_str(&format!(
                "(if (i32.eq (local.get $which) (i32.const {index})) (then (return (call $big{index} (i32.const 0)))))\n"
            ));
        }
        wat.push_str("i32.const -1))\n");
        wat::parse_str(&wat).expect("generated WAT is valid")
    }

    /// What `$big{index}` returns for 0: the sum of its 6,000 increments.
    fn expected_big(index: usize) -> i32 {
        (0..6_000)
            .map(|step| i32::try_from(step % 7 + index).expect("a small number"))
            .sum()
    }

    #[test]
    fn first_calls_of_large_functions_never_fail_wherever_a_fuel_slice_ends() {
        let runtime = Runtime::default();
        let wasm = large_functions_module(2);
        let function = name("run");
        // Each burn length puts the first call (and so the translation) of a
        // large function at a different point of a fuel slice.
        for burn in (0..12).map(|step| step * 83_333) {
            let compiled = runtime
                .prepare(&function, false, &wasm)
                .expect("the module deploys");
            // Slices of fuel, not time, are what this test moves around: a
            // debug build on a loaded machine must not meet the deadline.
            let limits = runtime.limits_for(&FunctionLimits {
                timeout_ms: Some(600_000),
                ..FunctionLimits::default()
            });
            for which in 0..2 {
                let output = runtime
                    .invoke(
                        &compiled,
                        &limits,
                        &args(&[("burn", &burn.to_string()), ("which", &which.to_string())]),
                    )
                    .unwrap_or_else(|error| panic!("burn {burn}, function {which}: {error}"));
                assert_eq!(
                    output,
                    expected_big(which).to_string().into_bytes(),
                    "burn {burn}"
                );
            }
        }
    }

    /// Whether calls of `function` run on the warm engine now.
    fn runs_warm(runtime: &Runtime, function: &CompiledFunction) -> bool {
        let (linked, module) = runtime.code_of(function);
        Engine::same(&linked.engine, runtime.warmer.engine())
            && Engine::same(module.engine(), runtime.warmer.engine())
    }

    #[test]
    fn a_warmed_function_runs_on_the_eager_engine_with_the_same_answers() {
        let runtime = Runtime::default();
        let wasm = large_functions_module(2);
        let function = name("run");
        let compiled = runtime
            .prepare(&function, false, &wasm)
            .expect("the module deploys");
        let limits = runtime.limits_for(&FunctionLimits::default());
        let call = |which: usize| {
            runtime
                .invoke(
                    &compiled,
                    &limits,
                    &args(&[("burn", "1000"), ("which", &which.to_string())]),
                )
                .expect("the call succeeds")
        };
        // Before warming: the lazy module answers.
        assert!(!runs_warm(&runtime, &compiled));
        assert_eq!(call(0), expected_big(0).to_string().into_bytes());
        runtime.warm(&compiled, wasm);
        runtime.warmer.wait_idle();
        assert_eq!(runtime.warmer.counts().warmed.load(Ordering::Relaxed), 1);
        assert!(runs_warm(&runtime, &compiled));
        assert_eq!(call(1), expected_big(1).to_string().into_bytes());
        assert_eq!(call(0), expected_big(0).to_string().into_bytes());
    }

    #[test]
    fn a_cancelled_or_dropped_function_is_not_warmed() {
        let runtime = Runtime::default();
        let wasm = large_functions_module(1);
        let function = name("run");
        let prepare = || {
            runtime
                .prepare(&function, false, &wasm)
                .expect("the module deploys")
        };
        let (cancelled, dropped) = (prepare(), prepare());
        cancelled.stop_warming();
        runtime.warm(&cancelled, wasm.clone());
        runtime.warm(&dropped, wasm.clone());
        drop(dropped);
        runtime.warmer.wait_idle();
        let counts = runtime.warmer.counts();
        assert_eq!(counts.warmed.load(Ordering::Relaxed), 0);
        assert_eq!(counts.cancelled.load(Ordering::Relaxed), 2);
        assert!(!runs_warm(&runtime, &cancelled));
        let limits = runtime.limits_for(&FunctionLimits::default());
        let output = runtime
            .invoke(&cancelled, &limits, &args(&[("burn", "0"), ("which", "0")]))
            .expect("a cancelled function still runs, lazily");
        assert_eq!(output, expected_big(0).to_string().into_bytes());
    }

    #[test]
    fn the_warming_queue_is_bounded() {
        let runtime = Runtime::default();
        let wasm = wat::parse_str(
            r#"(module (func (export "id") (param i32) (result i32) (local.get 0)))"#,
        )
        .expect("valid WAT");
        let compiled = runtime
            .prepare(&name("id"), false, &wasm)
            .expect("the module deploys");
        // One module larger than the whole byte bound is never queued.
        runtime.warm(&compiled, vec![0; warm::MAX_QUEUED_BYTES + 1]);
        assert_eq!(runtime.warmer.counts().dropped.load(Ordering::Relaxed), 1);
        runtime.warm(&compiled, wasm);
        runtime.warmer.wait_idle();
        assert_eq!(runtime.warmer.counts().warmed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn one_step_that_costs_more_than_a_fuel_slice_still_runs() {
        // memory.fill of 96 MiB costs 1.5 million fuel (64 bytes a unit),
        // more than one slice: the call must be given what the step needs.
        let wasm = wat::parse_str(
            r#"(module (memory 1)
                 (func (export "fill") (result i32)
                   (drop (memory.grow (i32.const 1536)))
                   (memory.fill (i32.const 0) (i32.const 7) (i32.const 100663296))
                   (i32.load8_u (i32.const 100663295))))"#,
        )
        .expect("valid WAT");
        let runtime = Runtime::default();
        let compiled = runtime
            .prepare(&name("fill"), false, &wasm)
            .expect("the module deploys");
        // Fuel, not time, is what this test is about: a debug build on a
        // loaded machine must not meet the default 10 s deadline.
        let limits = runtime.limits_for(&FunctionLimits {
            memory_limit_mb: Some(128),
            timeout_ms: Some(600_000),
            ..FunctionLimits::default()
        });
        let output = runtime.invoke(&compiled, &limits, &args(&[]));
        assert_eq!(output.expect("the fill finishes"), b"7");
    }

    #[test]
    fn a_fuel_budget_smaller_than_one_step_is_exhausted_not_stuck() {
        let wasm = wat::parse_str(
            r#"(module (memory 1)
                 (func (export "fill") (result i32)
                   (drop (memory.grow (i32.const 1536)))
                   (memory.fill (i32.const 0) (i32.const 7) (i32.const 100663296))
                   (i32.const 1)))"#,
        )
        .expect("valid WAT");
        let runtime = Runtime::default();
        let compiled = runtime
            .prepare(&name("fill"), false, &wasm)
            .expect("the module deploys");
        let limits = runtime.limits_for(&FunctionLimits {
            memory_limit_mb: Some(128),
            fuel: Some(1_200_000),
            ..FunctionLimits::default()
        });
        let error = runtime
            .invoke(&compiled, &limits, &args(&[]))
            .expect_err("the budget cannot pay for the fill");
        assert!(
            matches!(
                error,
                RuntimeError::FuelExhausted {
                    fuel: 1_200_000,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_start_function_that_never_finishes_is_refused_at_deploy() {
        let looping = r#"(module
            (func $forever (loop $again (br $again)))
            (start $forever)
            (func (export "spin") (param i32) (result i32) (local.get 0)))"#;
        let runtime = Runtime::default();
        let error = runtime
            .prepare(
                &name("spin"),
                false,
                &wat::parse_str(looping).expect("valid WAT"),
            )
            .expect_err("the start function never returns");
        assert!(
            matches!(error, RuntimeError::StartDidNotFinish { .. }),
            "{error}"
        );
    }

    #[test]
    fn a_wasi_start_function_that_sleeps_forever_is_refused_at_deploy() {
        // One relative monotonic clock of u64::MAX nanoseconds, slept in the
        // start function: the deploy would never finish.
        let sleeping = r#"(module
            (import "wasi_snapshot_preview1" "poll_oneoff"
              (func $poll (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func $nap
              (i32.store (i32.const 16) (i32.const 1))
              (i64.store (i32.const 24) (i64.const -1))
              (drop (call $poll (i32.const 0) (i32.const 128) (i32.const 1) (i32.const 192))))
            (start $nap)
            (func (export "_start")))"#;
        let runtime = Runtime::new(RuntimeOptions {
            timeout: Duration::from_millis(50),
            ..RuntimeOptions::default()
        });
        let error = runtime
            .prepare(
                &name("nap"),
                true,
                &wat::parse_str(sleeping).expect("valid WAT"),
            )
            .expect_err("the start function sleeps past the time limit");
        assert!(
            matches!(&error, RuntimeError::StartFailed { reason } if reason.contains("slept past the server's 50 ms")),
            "{error}"
        );
    }

    #[test]
    fn a_start_function_that_traps_is_refused_at_deploy() {
        let trapping = r#"(module
            (func $boom unreachable)
            (start $boom)
            (func (export "boom") (param i32) (result i32) (local.get 0)))"#;
        let runtime = Runtime::default();
        let error = runtime
            .prepare(
                &name("boom"),
                false,
                &wat::parse_str(trapping).expect("valid WAT"),
            )
            .expect_err("the start function traps");
        assert!(matches!(error, RuntimeError::StartFailed { .. }), "{error}");
    }
}
