//! The host module `wasm_engine`: calls between functions.
//!
//! Any function (string, numeric or WASI ABI) may import
//! `wasm_engine::call(name_ptr, name_len, input_ptr, input_len) -> i64` and
//! `wasm_engine::result(handle, out_ptr, out_cap) -> i64` (`docs/abi.md`).
//! `call` runs another deployed function on this thread, synchronously, in a
//! fresh instance of its own module, exactly as an HTTP invocation with that
//! input would, and keeps its output under a handle that `result` copies
//! out.
//!
//! This module owns the rules of a call: who may be called (the caller's
//! `calls`), the depth limit, cycles, the caller's remaining deadline and
//! fuel (which bound the callee, and which the callee's fuel is charged
//! to), the results an instance may hold, and the error codes. Finding and
//! running the callee, and counting it, is the [`Callees`] the service
//! implements, so `runtime` never depends on `service` or `store`.
//!
//! Builds without the cargo feature `calls` (on by default) link no host
//! functions: a module importing `wasm_engine` is refused at deploy, and
//! the rest of this module is never reached.
#![cfg_attr(not(feature = "calls"), allow(dead_code))]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[cfg(feature = "calls")]
use wasmi::{Caller, Extern, Linker, Memory};

use super::RuntimeError;
use crate::call::CallId;
#[cfg(feature = "calls")]
use crate::function::MAX_FUNCTION_NAME_LEN;
use crate::function::{FunctionName, Input};

/// The import module name of the host functions.
pub const HOST_MODULE: &str = "wasm_engine";

/// Whether imports from `module` are the host functions this build
/// provides (the cargo feature `calls`).
pub(super) fn provided(module: &str) -> bool {
    cfg!(feature = "calls") && module == HOST_MODULE
}

/// Most results of `call` one instance may hold before reading them with
/// `result` (each is at most `--max-output-bytes`).
pub const MAX_UNREAD_RESULTS: usize = 16;

/// Default of `--max-call-depth`: how deep calls may nest below the function
/// an HTTP request invoked.
pub const DEFAULT_MAX_CALL_DEPTH: usize = 8;

/// The largest `--max-call-depth` accepted: each level nests the interpreter
/// on the worker thread's native stack (2 MiB), and this many fit with room
/// to spare (`the_deepest_chain_the_flag_allows_fits_a_worker_threads_stack`).
pub const MAX_CALL_DEPTH_LIMIT: usize = 32;

/// Why `call` or `result` returned no handle or no bytes: the negative
/// number the function sees (documented in `docs/abi.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallCode {
    /// The callee is in the caller's `calls` but not deployed now.
    NotDeployed,
    /// The callee is not in the caller's `calls` (or the name is not a
    /// function name at all).
    NotAllowed,
    /// The callee trapped, exited with a non-zero code, hit its memory limit,
    /// returned output the engine cannot read, or could not be instantiated.
    Failed,
    /// The callee ran out of time: its own limit or what was left of the
    /// caller's.
    TimedOut,
    /// The callee spent its fuel: its own budget or what was left of the
    /// caller's.
    OutOfFuel,
    /// The call would nest deeper than `--max-call-depth`.
    DepthExceeded,
    /// The callee is already on the call stack (a call to itself included).
    Cycle,
    /// The callee's result, stdout or stderr passed `--max-output-bytes`.
    OutputTooLarge,
    /// `result` was given a handle that `call` did not return, or whose
    /// result was already read.
    BadHandle,
    /// A pointer and length lie outside the caller's memory (or it exports
    /// none named `memory`).
    BadPointer,
    /// The callee refused its input (the numeric ABI needs a JSON object of
    /// numbers as strings).
    BadInput,
    /// The caller holds [`MAX_UNREAD_RESULTS`] results it has not read.
    TooManyResults,
    /// The input is larger than a request body may be (`--max-body-bytes`).
    InputTooLarge,
}

impl CallCode {
    /// Every code, in the order of their numbers.
    pub const ALL: [CallCode; 13] = [
        Self::NotDeployed,
        Self::NotAllowed,
        Self::Failed,
        Self::TimedOut,
        Self::OutOfFuel,
        Self::DepthExceeded,
        Self::Cycle,
        Self::OutputTooLarge,
        Self::BadHandle,
        Self::BadPointer,
        Self::BadInput,
        Self::TooManyResults,
        Self::InputTooLarge,
    ];

    /// The negative number the function sees: -1 to -13.
    pub fn number(self) -> i64 {
        let index = Self::ALL
            .iter()
            .position(|code| *code == self)
            .unwrap_or_default();
        -1 - i64::try_from(index).unwrap_or_default()
    }

    /// The code of a callee that failed with `error`.
    pub fn of_error(error: &RuntimeError) -> Self {
        match error {
            RuntimeError::Timeout { .. } => Self::TimedOut,
            RuntimeError::FuelExhausted { .. } => Self::OutOfFuel,
            RuntimeError::OutputTooLarge { .. } => Self::OutputTooLarge,
            RuntimeError::BadArguments { .. } => Self::BadInput,
            _ => Self::Failed,
        }
    }
}

/// Finds and runs a callee: implemented by the service, which knows what
/// is deployed and counts each run in the callee's metrics and log.
pub trait Callees: Send + Sync {
    /// Runs the deployed function `callee` with `input`, as
    /// [`Runtime::run`](super::Runtime::run) with `Some(within)`; `None`
    /// when no function of that name is deployed.
    fn call(&self, callee: &FunctionName, input: &Input, within: &Within) -> Option<Run>;
}

/// How a run ended, and the fuel it used (counted only when a fuel budget
/// bounded it: the caller's is then charged with it).
#[derive(Debug)]
pub struct Run {
    /// The function's output as it wrote it: any bytes (`docs/abi.md`).
    pub output: Result<Vec<u8>, RuntimeError>,
    pub fuel_used: u64,
}

/// What a call of a function may use besides its input: its environment
/// and secrets, the functions it may call, and who runs them.
#[derive(Clone, Copy)]
pub struct CallSetup<'a> {
    /// Environment variables a WASI function sees (the deploy's `env`).
    pub env: &'a [(String, String)],
    /// The secrets a WASI function sees (`SECRET_<NAME>` and files).
    pub secrets: &'a [crate::secret::Secret],
    /// The functions it may call (the deploy's `calls`).
    pub calls: &'a Arc<[FunctionName]>,
    /// Who runs a callee; `None`: every `call` is refused as not allowed.
    pub callees: Option<&'a Arc<dyn Callees>>,
    /// The id of the request the call tree serves, for logs.
    pub call_id: &'a CallId,
}

/// The bounds a nested call runs within, made by the caller's `call`: the
/// stack of functions from the one the request invoked down to the callee,
/// the caller's deadline, what is left of its fuel budget, and the request's
/// call id.
pub struct Within {
    stack: Vec<FunctionName>,
    deadline: Instant,
    fuel: Option<u64>,
    callees: Arc<dyn Callees>,
    call_id: CallId,
}

impl Within {
    /// The id of the request the call tree serves.
    pub fn call_id(&self) -> &CallId {
        &self.call_id
    }

    /// Who runs the callee's own calls.
    pub fn callees(&self) -> &Arc<dyn Callees> {
        &self.callees
    }

    /// The latest the callee may run until.
    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// What is left of the caller's fuel budget, if it has one.
    pub(super) fn fuel(&self) -> Option<u64> {
        self.fuel
    }
}

/// What is left of a call's fuel budget (`None`: it has none), shared by
/// the invocation that grants it slice by slice and by its `call`s, which
/// charge their callees to it. (An atomic only because WASI store data must
/// be `Send`; one thread uses it.)
#[derive(Clone, Debug, Default)]
pub(super) struct FuelBudget {
    limited: bool,
    left: Arc<AtomicU64>,
}

impl FuelBudget {
    pub(super) fn new(fuel: Option<u64>) -> Self {
        Self {
            limited: fuel.is_some(),
            left: Arc::new(AtomicU64::new(fuel.unwrap_or_default())),
        }
    }

    pub(super) fn get(&self) -> Option<u64> {
        self.limited.then(|| self.left.load(Ordering::Relaxed))
    }

    /// Sets what is left; no effect on a call without a budget.
    pub(super) fn set(&self, left: u64) {
        self.left.store(left, Ordering::Relaxed);
    }
}

/// The part of an invocation's store data that the host functions use.
pub(super) struct HostState {
    /// From the function the request invoked down to this one.
    stack: Vec<FunctionName>,
    calls: Arc<[FunctionName]>,
    callees: Option<Arc<dyn Callees>>,
    call_id: Option<CallId>,
    deadline: Instant,
    budget: FuelBudget,
    max_call_depth: usize,
    /// The largest input a call may hand its callee, in bytes.
    max_call_input_bytes: u64,
    /// Outputs of calls not read yet, by handle; a read one is `None`.
    results: Vec<Option<Vec<u8>>>,
}

impl HostState {
    /// The host state of one invocation of `function`.
    pub(super) fn new(
        function: &FunctionName,
        setup: &CallSetup<'_>,
        within: Option<&Within>,
        deadline: Instant,
        budget: FuelBudget,
        max_call_depth: usize,
        max_call_input_bytes: u64,
    ) -> Self {
        let stack = match within {
            Some(within) => within.stack.clone(),
            None => vec![function.clone()],
        };
        Self {
            stack,
            calls: setup.calls.clone(),
            callees: setup.callees.cloned(),
            call_id: Some(setup.call_id.clone()),
            deadline,
            budget,
            max_call_depth,
            max_call_input_bytes,
            results: Vec::new(),
        }
    }

    /// For instances that are not calls (the check at deploy): every
    /// `call` is refused.
    pub(super) fn inert() -> Self {
        Self {
            stack: Vec::new(),
            calls: Arc::new([]),
            callees: None,
            call_id: None,
            deadline: Instant::now(),
            budget: FuelBudget::default(),
            max_call_depth: 0,
            max_call_input_bytes: 0,
            results: Vec::new(),
        }
    }
}

/// Store data that carries a [`HostState`].
pub(super) trait Hosted: 'static {
    fn host(&mut self) -> &mut HostState;
}

/// Defines `wasm_engine::call` and `wasm_engine::result` in `linker`
/// (builds with the cargo feature `calls`).
///
/// The closures only reach into the caller's store (its memory, host state
/// and fuel); the work is in [`call`] and [`result`], which are not generic,
/// so the two linkers share one copy of them (the binary size budget).
#[cfg(feature = "calls")]
pub(super) fn add_to_linker<T: Hosted>(linker: &mut Linker<T>) {
    linker
        .func_wrap(
            HOST_MODULE,
            "call",
            |mut caller: Caller<'_, T>,
             name_ptr: i32,
             name_len: i32,
             input_ptr: i32,
             input_len: i32|
             -> i64 {
                let slice_fuel = caller.get_fuel().unwrap_or_default();
                let Some(memory) = memory(&caller) else {
                    return CallCode::BadPointer.number();
                };
                let (data, state) = memory.data_and_store_mut(&mut caller);
                let name = (u32_bits(name_ptr), u32_bits(name_len));
                let input = (u32_bits(input_ptr), u32_bits(input_len));
                let (answer, fuel_left) = call(data, state.host(), slice_fuel, name, input);
                if let Some(fuel_left) = fuel_left {
                    // Cannot fail: the engine meters fuel.
                    let _ = caller.set_fuel(fuel_left);
                }
                answer.unwrap_or_else(|code| {
                    log::debug!("wasm_engine::call answered {code:?}");
                    code.number()
                })
            },
        )
        .and_then(|linker| {
            linker.func_wrap(
                HOST_MODULE,
                "result",
                |mut caller: Caller<'_, T>, handle: i64, out_ptr: i32, out_cap: i32| -> i64 {
                    let Some(memory) = memory(&caller) else {
                        return CallCode::BadPointer.number();
                    };
                    let (data, state) = memory.data_and_store_mut(&mut caller);
                    result(
                        data,
                        state.host(),
                        handle,
                        u32_bits(out_ptr),
                        u32_bits(out_cap),
                    )
                    .unwrap_or_else(CallCode::number)
                },
            )
        })
        .expect("the host functions are added to a linker once");
}

#[cfg(feature = "calls")]
fn u32_bits(value: i32) -> u32 {
    u32::from_ne_bytes(value.to_ne_bytes())
}

#[cfg(feature = "calls")]
/// The caller's exported `memory`.
fn memory<T>(caller: &Caller<'_, T>) -> Option<Memory> {
    caller.get_export("memory").and_then(Extern::into_memory)
}

#[cfg(feature = "calls")]
/// The `len` bytes at `ptr` of `memory`.
fn read(memory: &[u8], ptr: u32, len: u32) -> Result<&[u8], CallCode> {
    let start = ptr as usize;
    start
        .checked_add(len as usize)
        .and_then(|end| memory.get(start..end))
        .ok_or(CallCode::BadPointer)
}

#[cfg(feature = "calls")]
/// `call`, given the caller's `memory`, host state and the fuel left in the
/// slice it runs on: checks the callee is allowed, not on the stack and not
/// too deep, runs it within the caller's deadline and fuel, charges the
/// fuel it used and keeps its output under a new handle. The second value
/// is the fuel the caller's slice is to be left with, when that changes.
fn call(
    memory: &[u8],
    host: &mut HostState,
    slice_fuel: u64,
    (name_ptr, name_len): (u32, u32),
    (input_ptr, input_len): (u32, u32),
) -> (Result<i64, CallCode>, Option<u64>) {
    // No allowed name is longer: don't look at what cannot match.
    if name_len as usize > MAX_FUNCTION_NAME_LEN {
        return (Err(CallCode::NotAllowed), None);
    }
    let callee = match read(memory, name_ptr, name_len) {
        Ok(name) => std::str::from_utf8(name)
            .ok()
            .and_then(|name| FunctionName::new(name).ok()),
        Err(code) => return (Err(code), None),
    };
    let (callee, callees) = match (callee, &host.callees) {
        (Some(callee), Some(callees)) if host.calls.contains(&callee) => (callee, callees.clone()),
        _ => return (Err(CallCode::NotAllowed), None),
    };
    let refused = if host.stack.contains(&callee) {
        Some(CallCode::Cycle)
    } else if host.stack.len() > host.max_call_depth {
        Some(CallCode::DepthExceeded)
    } else if host.results.iter().flatten().count() >= MAX_UNREAD_RESULTS {
        Some(CallCode::TooManyResults)
    } else if u64::from(input_len) > host.max_call_input_bytes {
        // Refused before it is copied out of the caller's memory.
        Some(CallCode::InputTooLarge)
    } else if Instant::now() >= host.deadline {
        // The caller's time is up: stop it at once rather than at the end
        // of its fuel slice.
        return (Err(CallCode::TimedOut), Some(0));
    } else {
        None
    };
    if let Some(code) = refused {
        return (Err(code), None);
    }
    let input = match read(memory, input_ptr, input_len) {
        Ok(input) => Input::Raw(input.to_vec()),
        Err(code) => return (Err(code), None),
    };
    let mut stack = host.stack.clone();
    stack.push(callee.clone());
    // What the caller may still spend: its ungranted budget and what is
    // left of the slice it is running on.
    let fuel = host
        .budget
        .get()
        .map(|left| left.saturating_add(slice_fuel));
    let within = Within {
        stack,
        deadline: host.deadline,
        fuel,
        callees: callees.clone(),
        call_id: host.call_id.clone().unwrap_or_else(CallId::generate),
    };
    let Some(run) = callees.call(&callee, &input, &within) else {
        return (Err(CallCode::NotDeployed), None);
    };
    let mut fuel_left = charge(&host.budget, slice_fuel, run.fuel_used);
    if Instant::now() >= host.deadline {
        // The callee used the caller's time up: stop the caller too.
        fuel_left = Some(0);
    }
    let answer = run.output.map(|output| {
        host.results.push(Some(output));
        i64::try_from(host.results.len() - 1).unwrap_or(i64::MAX)
    });
    (
        answer.map_err(|error| CallCode::of_error(&error)),
        fuel_left,
    )
}

#[cfg(feature = "calls")]
/// Charges `used` fuel to the caller: first to its ungranted budget, then
/// to the slice it is running on, whose new fuel it returns when that
/// changes. Without a budget there is nothing to charge (only the deadline
/// bounds the caller).
fn charge(budget: &FuelBudget, slice_fuel: u64, used: u64) -> Option<u64> {
    let left = budget.get()?;
    let from_budget = left.min(used);
    budget.set(left - from_budget);
    let rest = used - from_budget;
    (rest > 0).then(|| slice_fuel.saturating_sub(rest))
}

#[cfg(feature = "calls")]
/// `result`, given the caller's `memory` and host state: copies a call's
/// output to `out_ptr` when it fits in `out_cap` bytes (and frees its
/// handle), else returns its size and keeps it.
fn result(
    memory: &mut [u8],
    host: &mut HostState,
    handle: i64,
    out_ptr: u32,
    out_cap: u32,
) -> Result<i64, CallCode> {
    let slot = usize::try_from(handle)
        .ok()
        .and_then(|index| host.results.get_mut(index))
        .ok_or(CallCode::BadHandle)?;
    let output = slot.as_ref().ok_or(CallCode::BadHandle)?;
    let size = i64::try_from(output.len()).unwrap_or(i64::MAX);
    if output.len() > out_cap as usize {
        return Ok(size);
    }
    let start = out_ptr as usize;
    let destination = start
        .checked_add(output.len())
        .and_then(|end| memory.get_mut(start..end))
        .ok_or(CallCode::BadPointer)?;
    destination.copy_from_slice(output);
    *slot = None;
    Ok(size)
}

#[cfg(all(test, feature = "calls"))]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::function::FunctionLimits;
    use crate::runtime::{CallLimits, CompiledFunction, Runtime, RuntimeOptions};

    const RELAY: &str = include_str!("../../tests/fixtures/relay.wat");

    /// echo, spin, boom, flood and burn (see the file).
    const CALLEES: &str = include_str!("../../tests/fixtures/callees.wat");

    struct Deployed {
        compiled: CompiledFunction,
        limits: CallLimits,
        calls: Arc<[FunctionName]>,
    }

    /// The service's part, as a map: what `call` reaches.
    struct Functions {
        runtime: Arc<Runtime>,
        deployed: HashMap<FunctionName, Deployed>,
    }

    impl Callees for Functions {
        fn call(&self, callee: &FunctionName, input: &Input, within: &Within) -> Option<Run> {
            let deployed = self.deployed.get(callee)?;
            let setup = CallSetup {
                env: &[],
                secrets: &[],
                calls: &deployed.calls,
                callees: Some(within.callees()),
                call_id: within.call_id(),
            };
            Some(self.runtime.run(
                &deployed.compiled,
                &deployed.limits,
                input,
                &setup,
                Some(within),
                &mut Vec::new(),
            ))
        }
    }

    fn name(name: &str) -> FunctionName {
        FunctionName::new(name).expect("a valid name")
    }

    /// One deployed function: its name, module, `calls` and limits.
    struct Spec<'a> {
        name: &'a str,
        wat: &'a str,
        calls: &'a [&'a str],
        limits: FunctionLimits,
    }

    fn spec<'a>(name: &'a str, wat: &'a str, calls: &'a [&'a str]) -> Spec<'a> {
        Spec {
            name,
            wat,
            calls,
            limits: FunctionLimits::default(),
        }
    }

    fn deploy(options: RuntimeOptions, specs: &[Spec<'_>]) -> Arc<Functions> {
        let runtime = Arc::new(Runtime::new(options));
        let deployed = specs
            .iter()
            .map(|spec| {
                let wasm = wat::parse_str(spec.wat).expect("valid WAT");
                let compiled = runtime
                    .prepare(&name(spec.name), false, &wasm)
                    .unwrap_or_else(|error| panic!("{} deploys: {error}", spec.name));
                let deployed = Deployed {
                    compiled,
                    limits: runtime.limits_for(&spec.limits),
                    calls: spec.calls.iter().map(|callee| name(callee)).collect(),
                };
                (name(spec.name), deployed)
            })
            .collect();
        Arc::new(Functions { runtime, deployed })
    }

    /// Runs `function` as a request would, with `input` as its raw body.
    fn invoke(functions: &Arc<Functions>, function: &str, input: &str) -> Run {
        let callees: Arc<dyn Callees> = functions.clone();
        let deployed = &functions.deployed[&name(function)];
        let setup = CallSetup {
            env: &[],
            secrets: &[],
            calls: &deployed.calls,
            callees: Some(&callees),
            call_id: &CallId::generate(),
        };
        functions.runtime.run(
            &deployed.compiled,
            &deployed.limits,
            &Input::Raw(input.as_bytes().to_vec()),
            &setup,
            None,
            &mut Vec::new(),
        )
    }

    #[track_caller]
    fn output(run: Run) -> String {
        let output = run
            .output
            .unwrap_or_else(|error| panic!("the call fails: {error}"));
        String::from_utf8(output).expect("the test's functions answer text")
    }

    #[test]
    fn a_call_returns_the_callees_output() {
        let world = deploy(
            RuntimeOptions::default(),
            &[spec("relay", RELAY, &["echo"]), spec("echo", CALLEES, &[])],
        );
        assert_eq!(
            output(invoke(&world, "relay", "echo hello there")),
            "hello there"
        );
        assert_eq!(output(invoke(&world, "relay", "")), "end");
        // Over HTTP, the list is its one argument's value.
        assert_eq!(
            output(invoke(&world, "relay", r#"{"chain":"echo hi"}"#)),
            "hi"
        );
        assert_eq!(output(invoke(&world, "relay", r#"{"chain":""}"#)), "end");
    }

    #[test]
    fn callees_not_listed_or_not_deployed_are_error_codes() {
        let world = deploy(
            RuntimeOptions::default(),
            &[
                spec("relay", RELAY, &["echo", "ghost"]),
                spec("echo", CALLEES, &[]),
                spec("boom", CALLEES, &[]),
            ],
        );
        assert_eq!(output(invoke(&world, "relay", "boom x")), "error -2");
        assert_eq!(output(invoke(&world, "relay", "ghost x")), "error -1");
        assert_eq!(output(invoke(&world, "relay", "../etc x")), "error -2");
        let long = format!("{} x", "a".repeat(200));
        assert_eq!(output(invoke(&world, "relay", &long)), "error -2");
    }

    #[test]
    fn a_callee_that_traps_or_floods_is_an_error_code_not_a_trap_of_the_caller() {
        let world = deploy(
            RuntimeOptions::default(),
            &[
                spec("relay", RELAY, &["boom", "flood"]),
                spec("boom", CALLEES, &[]),
                spec("flood", CALLEES, &[]),
            ],
        );
        assert_eq!(output(invoke(&world, "relay", "boom")), "error -3");
        assert_eq!(output(invoke(&world, "relay", "flood")), "error -8");
    }

    #[test]
    fn calls_to_a_function_on_the_stack_are_cycles() {
        let all = ["relay", "r1", "r2"];
        let world = deploy(
            RuntimeOptions::default(),
            &[
                spec("relay", RELAY, &all),
                spec("r1", RELAY, &all),
                spec("r2", RELAY, &all),
            ],
        );
        assert_eq!(output(invoke(&world, "relay", "relay")), "error -7");
        assert_eq!(output(invoke(&world, "relay", "r1 r2 relay")), "error -7");
        assert_eq!(output(invoke(&world, "relay", "r1 r2 r1")), "error -7");
        assert_eq!(output(invoke(&world, "relay", "r1 r2")), "end");
    }

    #[test]
    fn calls_nest_only_to_the_depth_limit() {
        let all = ["r0", "r1", "r2", "r3", "r4", "r5"];
        let specs: Vec<Spec<'_>> = all.iter().map(|link| spec(link, RELAY, &all)).collect();
        let options = RuntimeOptions {
            max_call_depth: 3,
            ..RuntimeOptions::default()
        };
        let world = deploy(options, &specs);
        // r0 (depth 0) -> r1 -> r2 -> r3 (depth 3): allowed.
        assert_eq!(output(invoke(&world, "r0", "r1 r2 r3")), "end");
        // r3 -> r4 would be depth 4.
        assert_eq!(output(invoke(&world, "r0", "r1 r2 r3 r4")), "error -6");
        let none = RuntimeOptions {
            max_call_depth: 0,
            ..RuntimeOptions::default()
        };
        let world = deploy(none, &specs);
        assert_eq!(output(invoke(&world, "r0", "r1")), "error -6");
    }

    #[test]
    fn the_deepest_chain_the_flag_allows_fits_a_worker_threads_stack() {
        assert_eq!(MAX_CALL_DEPTH_LIMIT, 32);
        // 33 links: the request's function and 32 levels (--max-call-depth's
        // largest value), on a thread with the 2 MiB stack workers get. Each
        // level nests the interpreter on the native stack: 64 overflowed it
        // in a debug build.
        let names: Vec<String> = (0..=32).map(|index| format!("c{index}")).collect();
        let mut wat = RELAY
            .trim_end()
            .strip_suffix(')')
            .expect("the module ends with ')'")
            .to_owned();
        for name in &names {
            wat.push_str(&format!("\n  (export \"{name}\" (func $relay))"));
        }
        wat.push(')');
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let specs: Vec<Spec<'_>> = all.iter().map(|link| spec(link, &wat, &all)).collect();
        let options = RuntimeOptions {
            max_call_depth: 32,
            ..RuntimeOptions::default()
        };
        let world = deploy(options, &specs);
        let chain = all[1..].join(" ");
        let output = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || output(invoke(&world, "c0", &chain)))
            .expect("a thread starts")
            .join()
            .expect("the chain does not overflow the stack");
        assert_eq!(output, "end");
    }

    #[test]
    fn a_callee_that_never_returns_ends_the_caller_at_the_callers_deadline() {
        let mut caller = spec("relay", RELAY, &["spin"]);
        caller.limits.timeout_ms = Some(50);
        // The callee's own limit is far away: the caller's deadline stops it.
        let mut spin = spec("spin", CALLEES, &[]);
        spin.limits.timeout_ms = Some(600_000);
        let world = deploy(RuntimeOptions::default(), &[caller, spin]);
        let error = invoke(&world, "relay", "spin")
            .output
            .expect_err("the caller's deadline passes");
        assert!(
            matches!(&error, RuntimeError::Timeout { function, .. } if function == "relay"),
            "{error}"
        );
    }

    #[test]
    fn a_callee_that_never_returns_spends_the_callers_fuel() {
        let mut caller = spec("relay", RELAY, &["spin"]);
        caller.limits.fuel = Some(3_000_000);
        caller.limits.timeout_ms = Some(600_000);
        let mut spin = spec("spin", CALLEES, &[]);
        spin.limits.timeout_ms = Some(600_000);
        let world = deploy(RuntimeOptions::default(), &[caller, spin]);
        let error = invoke(&world, "relay", "spin")
            .output
            .expect_err("the caller's fuel runs out");
        assert!(
            matches!(&error, RuntimeError::FuelExhausted { function, .. } if function == "relay"),
            "{error}"
        );
    }

    #[test]
    fn the_fuel_a_callee_uses_is_charged_to_its_caller() {
        let mut caller = spec("relay", RELAY, &["burn"]);
        caller.limits.fuel = Some(100_000_000);
        // A debug build on a loaded machine takes seconds for the loop:
        // fuel, not time, is what this test measures.
        caller.limits.timeout_ms = Some(600_000);
        // The callee's own time limit too (-4 otherwise).
        let mut burn = spec("burn", CALLEES, &[]);
        burn.limits.timeout_ms = Some(600_000);
        let world = deploy(RuntimeOptions::default(), &[caller, burn]);
        let alone = invoke(&world, "relay", "");
        let with_callee = invoke(&world, "relay", "burn");
        assert_eq!(output(alone).as_str(), "end");
        let used = with_callee.fuel_used;
        assert_eq!(output(with_callee).as_str(), "");
        // A million iterations of a few instructions each.
        assert!(used > 1_000_000, "the caller was charged only {used}");
        // With less fuel than the callee needs, the callee runs out and the
        // caller with it.
        let mut caller = spec("relay", RELAY, &["burn"]);
        caller.limits.fuel = Some(500_000);
        let world = deploy(
            RuntimeOptions::default(),
            &[caller, spec("burn", CALLEES, &[])],
        );
        assert!(matches!(
            invoke(&world, "relay", "burn").output,
            Err(RuntimeError::FuelExhausted { .. })
        ));
    }

    #[test]
    fn a_callees_start_function_is_charged_to_its_caller() {
        // Its start function burns over 4 million fuel per instance.
        const START_BURN: &str = include_str!("../../tests/fixtures/start_burn.wat");
        let world_with = |fuel| {
            let mut caller = spec("relay", RELAY, &["start_burn"]);
            caller.limits.fuel = Some(fuel);
            caller.limits.timeout_ms = Some(600_000);
            deploy(
                RuntimeOptions::default(),
                &[caller, spec("start_burn", START_BURN, &[])],
            )
        };
        let world = world_with(100_000_000);
        let run = invoke(&world, "relay", "start_burn");
        let used = run.fuel_used;
        assert_eq!(output(run), "");
        assert!(used > 4_000_000, "the caller was charged only {used}");
        // A caller that cannot pay for the start function runs out.
        let world = world_with(2_000_000);
        let error = invoke(&world, "relay", "start_burn")
            .output
            .expect_err("the start function spends the caller's fuel");
        assert!(
            matches!(&error, RuntimeError::FuelExhausted { function, fuel: 2_000_000 } if function == "relay"),
            "{error}"
        );
    }

    #[test]
    fn result_refuses_unknown_handles_and_pointers_outside_memory() {
        let wat = r#"(module
            (import "wasm_engine" "call" (func $call (param i32 i32 i32 i32) (result i64)))
            (import "wasm_engine" "result" (func $result (param i64 i32 i32) (result i64)))
            (memory (export "memory") 1)
            (data (i32.const 0) "echo")
            (func (export "probe") (param $which i32) (result i64) (local $handle i64)
              (if (i32.eq (local.get $which) (i32.const 0))
                (then (return (call $result (i64.const 5) (i32.const 0) (i32.const 0)))))
              (if (i32.eq (local.get $which) (i32.const 1))
                (then (return (call $call (i32.const -16) (i32.const 4) (i32.const 0) (i32.const 0)))))
              (if (i32.eq (local.get $which) (i32.const 2))
                (then (return (call $call (i32.const 0) (i32.const 4) (i32.const -16) (i32.const 100)))))
              (local.set $handle (call $call (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 4)))
              (if (i32.eq (local.get $which) (i32.const 3))
                (then (return (call $result (local.get $handle) (i32.const 65534) (i32.const 4)))))
              (if (i32.eq (local.get $which) (i32.const 4))
                (then
                  (drop (call $result (local.get $handle) (i32.const 100) (i32.const 4)))
                  (return (call $result (local.get $handle) (i32.const 100) (i32.const 4)))))
              ;; 5: hold results without reading them.
              (block $full (loop $again
                (local.set $handle (call $call (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 4)))
                (br_if $full (i64.lt_s (local.get $handle) (i64.const 0)))
                (br $again)))
              (local.get $handle)))"#;
        let world = deploy(
            RuntimeOptions::default(),
            &[spec("probe", wat, &["echo"]), spec("echo", CALLEES, &[])],
        );
        let probe = |which: &str| {
            output(invoke(
                &world,
                "probe",
                &format!("{{\"which\":\"{which}\"}}"),
            ))
        };
        assert_eq!(probe("0"), "-9", "a handle never returned");
        assert_eq!(probe("1"), "-10", "a name outside memory");
        assert_eq!(probe("2"), "-10", "an input outside memory");
        assert_eq!(probe("3"), "-10", "an output buffer past the end of memory");
        assert_eq!(probe("4"), "-9", "a result read twice");
        assert_eq!(probe("5"), "-12", "more results held than allowed");
    }

    #[test]
    fn modules_importing_the_host_module_are_marked_and_checked_at_deploy() {
        let runtime = Runtime::default();
        let wasm = wat::parse_str(RELAY).expect("valid WAT");
        let relay = runtime
            .prepare(&name("relay"), false, &wasm)
            .expect("deploys");
        assert!(relay.imports_calls());
        let wasm = wat::parse_str(CALLEES).expect("valid WAT");
        let echo = runtime
            .prepare(&name("echo"), false, &wasm)
            .expect("deploys");
        assert!(!echo.imports_calls());
        let wrong_type = r#"(module
            (import "wasm_engine" "call" (func (param i32) (result i64)))
            (memory (export "memory") 1)
            (func (export "f") (param i32 i32) (result i64) (i64.const 0)))"#;
        let wasm = wat::parse_str(wrong_type).expect("valid WAT");
        let error = runtime
            .prepare(&name("f"), false, &wasm)
            .expect_err("the import's type is wrong");
        assert!(error.to_string().contains("wasm_engine"), "{error}");
    }

    #[test]
    fn every_code_has_its_number() {
        let numbers: Vec<i64> = CallCode::ALL.iter().map(|code| code.number()).collect();
        assert_eq!(numbers, (1..=13).map(|n| -n).collect::<Vec<i64>>());
        assert_eq!(CallCode::Cycle.number(), -7);
    }
}
