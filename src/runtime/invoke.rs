//! One invocation: [`Invocation`] owns what every call shares (its deadline,
//! what is left of its fuel budget, a fresh `Store` with the instance
//! limiter, instantiation, metered calls, and how a stopped call becomes a
//! [`RuntimeError`]); its `string`, `numeric` and `wasi` methods are the
//! three ABIs. See `docs/abi.md` for the contracts.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use wasmi::{Func, Instance, Linker, Memory, ResumableCall, Store, Val, ValType};
use wasmi_wasi::wasi_common::pipe::{ReadPipe, WritePipe};

use super::host::{CallSetup, FuelBudget, HostState, Within};
use super::sched::{self, Expired};
use super::{
    CallLimits, CompiledFunction, InstanceLimiter, Limited, PlainState, Runtime, RuntimeError,
    StringReturn, WasiState,
};
use crate::function::{Input, InvocationArgs};
use crate::secret::Secret;

const WASM_PAGE_BYTES: u64 = 65_536;
/// Fuel granted per slice; the deadline is checked between slices. About a
/// millisecond of interpretation here, so a call overruns its deadline by
/// about that much at most (plus any single host call).
const FUEL_SLICE: u64 = 1_000_000;
/// Fuel for a module's start function, which runs inside instantiation and
/// so cannot be suspended for the deadline: this fuel is its only bound
/// (about 10 ms of interpretation on the machine in docs/performance.md).
/// A start section is rare (Rust and C toolchains initialise in `_start` or
/// `_initialize`, which run under the call's deadline); instantiating
/// itself (memories, data segments) costs no fuel.
pub(super) const INSTANTIATION_FUEL: u64 = 10 * FUEL_SLICE;

/// Why a metered call stopped without finishing.
enum Stop {
    /// The deadline passed.
    Timeout,
    /// The call's fuel budget is spent.
    FuelExhausted,
    /// The function trapped or exited (WASI `proc_exit`).
    Failed {
        message: String,
        exit_status: Option<i32>,
    },
}

impl From<&wasmi::Error> for Stop {
    fn from(error: &wasmi::Error) -> Self {
        Stop::Failed {
            message: error.to_string(),
            exit_status: error.i32_exit_status(),
        }
    }
}

impl From<wasmi::Error> for Stop {
    fn from(error: wasmi::Error) -> Self {
        Stop::from(&error)
    }
}

/// A fresh store for `data` on `engine`: the instance limiter installed and
/// the fuel of instantiation (a start function's only bound) granted.
pub(super) fn new_store<T: Limited>(engine: &wasmi::Engine, data: T) -> Store<T> {
    let mut store = Store::new(engine, data);
    store.limiter(|state| state.limiter());
    store
        .set_fuel(INSTANTIATION_FUEL)
        .expect("the engine meters fuel");
    store
}

/// How much of a failing WASI function's stderr an error message quotes.
const STDERR_TAIL_BYTES: usize = 512;

/// One call of a deployed function, from a fresh store to its output.
pub(super) struct Invocation<'a> {
    function: &'a CompiledFunction,
    /// The engine and linkers the call runs on, and the module on that
    /// engine: the warm one if ready (`Runtime::code_of`).
    code: (&'a super::Linked, &'a wasmi::Module),
    limits: &'a CallLimits,
    /// When the call is stopped (504), from `limits.timeout` (or the
    /// caller's deadline, for a nested call, if that comes first).
    deadline: Instant,
    /// The fuel budget the call started with; `None`: only the deadline.
    fuel: Option<u64>,
    /// What is left of it (shared with the host functions, which charge
    /// callees to it).
    budget: FuelBudget,
    /// Environment variables a WASI function sees.
    env: &'a [(String, String)],
    /// Set when a WASI wait reached the deadline (`sched`): the trap that
    /// ended the call is then its time limit.
    expired: Expired,
    /// What the host functions use; moved into the store when it is made.
    host: Option<HostState>,
}

impl<'a> Invocation<'a> {
    /// Starts the clock of one call; a nested call (`within`) gets no more
    /// time or fuel than its caller has left.
    pub(super) fn start(
        runtime: &'a Runtime,
        function: &'a CompiledFunction,
        limits: &'a CallLimits,
        setup: &CallSetup<'a>,
        within: Option<&Within>,
    ) -> Self {
        let mut deadline = Instant::now() + limits.timeout;
        let mut fuel = limits.fuel;
        if let Some(within) = within {
            deadline = deadline.min(within.deadline());
            fuel = match (fuel, within.fuel()) {
                (Some(own), Some(left)) => Some(own.min(left)),
                (own, left) => own.or(left),
            };
        }
        let budget = FuelBudget::new(fuel);
        let host = HostState::new(
            &function.name,
            setup,
            within,
            deadline,
            budget.clone(),
            runtime.max_call_depth,
            runtime.max_call_input_bytes,
        );
        Self {
            function,
            code: runtime.code_of(function),
            limits,
            deadline,
            fuel,
            budget,
            env: setup.env,
            expired: Expired::default(),
            host: Some(host),
        }
    }

    /// What is left of the call's fuel budget, as it is spent.
    pub(super) fn budget(&self) -> FuelBudget {
        self.budget.clone()
    }

    /// The host state, for the store being made.
    fn take_host(&mut self) -> HostState {
        self.host.take().unwrap_or_else(HostState::inert)
    }

    /// The string ABI: write the input (the args JSON, or a raw body) at
    /// the start of freshly grown pages, call `f(ptr, len)`, read the
    /// `(ptr, len)` it returns (as two `i32`, or packed in one `i64` as
    /// `ptr << 32 | len`): any bytes, UTF-8 or not.
    pub(super) fn string(
        mut self,
        returns: StringReturn,
        input: &Input,
    ) -> Result<Vec<u8>, RuntimeError> {
        let (mut store, instance) = self.plain_instance()?;
        let name = self.function.name.as_str();
        let memory: Memory =
            instance
                .get_memory(&store, "memory")
                .ok_or_else(|| RuntimeError::MissingMemory {
                    function: name.to_owned(),
                })?;
        let entry = self.export(&instance, &store, name)?;

        let input = input.bytes();
        let too_large = || RuntimeError::BadArguments {
            reason: format!(
                "the {} byte arguments do not fit in function {name}'s 32-bit address space",
                input.len()
            ),
        };
        let input_len = u32::try_from(input.len()).map_err(|_| too_large())?;
        let pages = u64::from(input_len).div_ceil(WASM_PAGE_BYTES).max(1);
        let old_pages =
            memory
                .grow(&mut store, pages)
                .map_err(|error| RuntimeError::BadArguments {
                    reason: format!(
                        "the {} byte arguments do not fit in function {name}'s memory: {error}",
                        input.len()
                    ),
                })?;
        let input_ptr = u32::try_from(old_pages * WASM_PAGE_BYTES).map_err(|_| too_large())?;
        memory
            .write(
                &mut store,
                usize::try_from(input_ptr).map_err(|_| too_large())?,
                &input,
            )
            .map_err(|error| self.trap(error.into()))?;

        let mut two_results = [Val::I32(0), Val::I32(0)];
        let mut packed = [Val::I64(0)];
        let outputs: &mut [Val] = match returns {
            StringReturn::TwoResults => &mut two_results,
            StringReturn::Packed => &mut packed,
        };
        let inputs = [Val::I32(i32_bits(input_ptr)), Val::I32(i32_bits(input_len))];
        self.call(&mut store, entry, &inputs, outputs)?;
        let (output_ptr, output_len) = match outputs {
            [Val::I32(ptr), Val::I32(len)] => (u32_bits(*ptr), u32_bits(*len)),
            [Val::I64(packed)] => unpack_pointer_and_length(*packed),
            _ => {
                return Err(self.trap(wasmi::Error::new(
                    "the string ABI returns two i32 or one i64",
                )));
            }
        };
        read_result(
            name,
            memory.data(&store),
            output_ptr,
            output_len,
            self.limits.max_output_bytes,
        )
    }

    /// The numeric ABI: parse each argument as its parameter's type, call,
    /// and print the results as decimal text separated by spaces.
    pub(super) fn numeric(
        mut self,
        params: &[ValType],
        param_names: Option<&[String]>,
        input: &Input,
    ) -> Result<Vec<u8>, RuntimeError> {
        let function = self.function;
        let args = input
            .arguments()
            .map_err(|reason| RuntimeError::BadArguments { reason })?;
        let raw_values = bind_arguments(function.name.as_str(), params, param_names, &args)?;
        let mut values = Vec::with_capacity(params.len());
        for ((label, raw), ty) in raw_values.iter().zip(params) {
            values.push(
                parse_number(raw, ty).ok_or_else(|| RuntimeError::BadArguments {
                    reason: format!(
                        "argument {label} = {raw:?} is not a valid {} for function {}",
                        type_name(ty),
                        function.name
                    ),
                })?,
            );
        }
        let (mut store, instance) = self.plain_instance()?;
        let func = self.export(&instance, &store, function.name.as_str())?;
        let mut results: Vec<Val> = func
            .ty(&store)
            .results()
            .iter()
            .map(|ty| Val::default_for_ty(*ty))
            .collect();
        self.call(&mut store, func, &values, &mut results)?;
        Ok(results
            .iter()
            .map(format_number)
            .collect::<Vec<_>>()
            .join(" ")
            .into_bytes())
    }

    /// WASI: run `_start` with `argv = [args JSON]`, the same JSON on stdin,
    /// the deploy's `env`, and no preopened directories except the call's
    /// `secrets` (`secret_files::provide`, which adds their variables); stdout
    /// is the output, byte for byte, except that one trailing newline is
    /// removed from an output that is UTF-8 text (as the reference engine
    /// does; bytes that are not text are never cut). What it wrote to stderr is appended
    /// to `stderr_out`. A raw body is stdin as it is, and `argv[0]` when it
    /// is a JSON object (else the function's name, as a program name).
    pub(super) fn wasi(
        mut self,
        input: &Input,
        secrets: &[Secret],
        stderr_out: &mut Vec<u8>,
    ) -> Result<Vec<u8>, RuntimeError> {
        let (function, limits) = (self.function, self.limits);
        let argv0 = input
            .json_object_text()
            .unwrap_or_else(|| function.name.as_str().into());
        let stdout = Arc::new(RwLock::new(CappedBuffer::new(limits.max_output_bytes)));
        let stderr = Arc::new(RwLock::new(CappedBuffer::new(limits.max_output_bytes)));
        // Waits (sleeps) end at the deadline, as instructions do.
        let mut wasi = sched::wasi_context(self.deadline, self.expired.clone());
        wasi.set_stdin(Box::new(ReadPipe::from(input.bytes().into_owned())));
        wasi.set_stdout(Box::new(WritePipe::from_shared(stdout.clone())));
        wasi.set_stderr(Box::new(WritePipe::from_shared(stderr.clone())));
        wasi.push_arg(&argv0)
            .map_err(|error| RuntimeError::BadArguments {
                reason: format!("the arguments cannot be passed as argv: {error}"),
            })?;
        // Keys and values were checked at deploy (no `=`, no NUL).
        for (key, value) in self.env {
            wasi.push_env(key, value)
                .map_err(|error| RuntimeError::BadArguments {
                    reason: format!("the environment cannot be passed: {error}"),
                })?;
        }
        super::secret_files::provide(&mut wasi, secrets).map_err(|reason| {
            RuntimeError::Instantiation {
                function: function.name.to_string(),
                reason,
            }
        })?;
        let mut store = new_store(
            &self.code.0.engine,
            WasiState {
                limiter: InstanceLimiter::for_function(function, limits.memory_limit_bytes),
                wasi,
                host: self.take_host(),
            },
        );
        let instance = self.instantiate(&mut store, &self.code.0.wasi_linker)?;
        let start = self.export(&instance, &store, "_start")?;
        let outcome = self.call_metered(&mut store, start, &[], &mut []);
        let memory_refused = store.data().limiter.memory_refused;
        drop(store);
        let take = |buffer: &Arc<RwLock<CappedBuffer>>| {
            std::mem::take(
                &mut *buffer
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            )
        };
        let (stdout, stderr) = (take(&stdout), take(&stderr));
        stderr_out.extend_from_slice(&stderr.bytes);
        for (stream, buffer) in [("stdout", &stdout), ("stderr", &stderr)] {
            if buffer.overflowed {
                return Err(RuntimeError::OutputTooLarge {
                    function: function.name.to_string(),
                    stream,
                    limit_bytes: limits.max_output_bytes,
                });
            }
        }
        match outcome {
            Ok(())
            | Err(Stop::Failed {
                exit_status: Some(0),
                ..
            }) => {
                let mut output = stdout.bytes;
                if output.last() == Some(&b'\n') && std::str::from_utf8(&output).is_ok() {
                    output.pop();
                }
                Ok(output)
            }
            Err(Stop::Failed {
                exit_status: Some(exit_code),
                ..
            }) => {
                let stderr = stderr.bytes;
                let tail = &stderr[stderr.len().saturating_sub(STDERR_TAIL_BYTES)..];
                Err(RuntimeError::NonZeroExit {
                    function: function.name.to_string(),
                    exit_code,
                    stderr_tail: crate::function_log::escape_invalid_utf8(tail)
                        .trim()
                        .to_owned(),
                })
            }
            Err(stop) => Err(self.error(stop, memory_refused)),
        }
    }

    /// A fresh plain instance, its `_initialize` run first if it is a reactor.
    fn plain_instance(&mut self) -> Result<(Store<PlainState>, Instance), RuntimeError> {
        let mut store = new_store(
            &self.code.0.engine,
            PlainState {
                limiter: InstanceLimiter::for_function(
                    self.function,
                    self.limits.memory_limit_bytes,
                ),
                host: self.take_host(),
            },
        );
        let instance = self.instantiate(&mut store, &self.code.0.plain_linker)?;
        if self.function.calls_initialize {
            let initialize = self.export(&instance, &store, "_initialize")?;
            self.call_metered(&mut store, initialize, &[], &mut [])
                .map_err(|stop| match stop {
                    Stop::Failed { message, .. } => RuntimeError::Instantiation {
                        function: self.function.name.to_string(),
                        reason: format!("_initialize failed: {message}"),
                    },
                    stop => self.error(stop, false),
                })?;
        }
        Ok((store, instance))
    }

    /// Instantiates the module and runs its start function, if it has one.
    /// The start function's fuel ([`INSTANTIATION_FUEL`] at most) comes out
    /// of the call's budget like any other instruction's, so a callee's start
    /// function is charged to its caller; what it leaves is given back.
    fn instantiate<T: Limited>(
        &self,
        store: &mut Store<T>,
        linker: &Linker<T>,
    ) -> Result<Instance, RuntimeError> {
        let granted = match self.budget.get() {
            Some(left) => {
                let granted = left.min(INSTANTIATION_FUEL);
                self.budget.set(left - granted);
                granted
            }
            None => INSTANTIATION_FUEL,
        };
        // Cannot fail: the engine meters fuel.
        let _ = store.set_fuel(granted);
        let outcome = linker.instantiate_and_start(&mut *store, self.code.1);
        if let (Some(left), Ok(unused)) = (self.budget.get(), store.get_fuel()) {
            self.budget.set(left.saturating_add(unused));
            let _ = store.set_fuel(0);
        }
        outcome.map_err(|error| {
            let out_of_fuel = error.as_trap_code() == Some(wasmi::TrapCode::OutOfFuel);
            // A wait reached the deadline, or a call the start function made
            // did (`wasm_engine::call` then empties the fuel to stop it).
            if self.expired.is_set() || (out_of_fuel && Instant::now() >= self.deadline) {
                self.error(Stop::Timeout, false)
            } else if granted < INSTANTIATION_FUEL && out_of_fuel {
                // The start function passed deploy's check, so it was the
                // budget that ran out, not the start function's own bound.
                self.error(Stop::FuelExhausted, false)
            } else {
                RuntimeError::Instantiation {
                    function: self.function.name.to_string(),
                    reason: error.to_string(),
                }
            }
        })
    }

    fn export(
        &self,
        instance: &Instance,
        store: &impl wasmi::AsContext,
        name: &str,
    ) -> Result<Func, RuntimeError> {
        instance
            .get_func(store, name)
            .ok_or_else(|| self.trap(wasmi::Error::new(format!("export {name} vanished"))))
    }

    /// Calls `func` under the deadline and budget; a stop is an error.
    fn call<T: Limited>(
        &mut self,
        store: &mut Store<T>,
        func: Func,
        inputs: &[Val],
        outputs: &mut [Val],
    ) -> Result<(), RuntimeError> {
        self.call_metered(store, func, inputs, outputs)
            .map_err(|stop| {
                let memory_refused = store.data_mut().limiter().memory_refused;
                self.error(stop, memory_refused)
            })
    }

    /// Calls `func`, granting fuel one slice at a time and checking the
    /// clock between slices: a wall-clock deadline for an interpreter. The
    /// fuel budget, when set, caps the total granted.
    fn call_metered<T>(
        &mut self,
        store: &mut Store<T>,
        func: Func,
        inputs: &[Val],
        outputs: &mut [Val],
    ) -> Result<(), Stop> {
        let budget = &self.budget;
        // A slice is at least what the next step needs: one `memory.fill` or
        // `memory.copy` can cost more than a whole slice, and granting less
        // would suspend the call again at once, forever.
        let grant = |store: &mut Store<T>, required: u64| -> Result<(), Stop> {
            let wanted = FUEL_SLICE.max(required);
            let slice = match budget.get() {
                Some(left) if left < required.max(1) => return Err(Stop::FuelExhausted),
                Some(left) => {
                    let slice = wanted.min(left);
                    budget.set(left - slice);
                    slice
                }
                None => wanted,
            };
            store.set_fuel(slice)?;
            Ok(())
        };
        grant(store, 0)?;
        let outcome = (|| {
            let mut call = func.call_resumable(&mut *store, inputs, outputs)?;
            loop {
                match call {
                    ResumableCall::Finished => return Ok(()),
                    ResumableCall::HostTrap(trap) => return Err(Stop::from(trap.host_error())),
                    ResumableCall::OutOfFuel(out_of_fuel) => {
                        if Instant::now() >= self.deadline {
                            return Err(Stop::Timeout);
                        }
                        grant(store, out_of_fuel.required_fuel())?;
                        call = out_of_fuel.resume(&mut *store, outputs)?;
                    }
                }
            }
        })();
        // Give back what the last slice did not use, however the call ended
        // (a nested call's caller is charged only what it used).
        if let (Some(left), Ok(unused)) = (budget.get(), store.get_fuel()) {
            budget.set(left.saturating_add(unused));
            // Cannot fail: the engine meters fuel.
            let _ = store.set_fuel(0);
        }
        match outcome {
            // A WASI wait reached the deadline and trapped.
            Err(Stop::Failed { .. }) if self.expired.is_set() => Err(Stop::Timeout),
            outcome => outcome,
        }
    }

    /// What a stopped call answers; `memory_refused`: a growth was refused
    /// before it stopped, so a trap is reported as the memory limit.
    fn error(&self, stop: Stop, memory_refused: bool) -> RuntimeError {
        let function = self.function.name.to_string();
        match stop {
            Stop::Timeout => RuntimeError::Timeout {
                function,
                timeout_ms: u64::try_from(self.limits.timeout.as_millis()).unwrap_or(u64::MAX),
            },
            Stop::FuelExhausted => RuntimeError::FuelExhausted {
                function,
                fuel: self.fuel.unwrap_or_default(),
            },
            Stop::Failed { message, .. } if memory_refused => RuntimeError::MemoryLimit {
                function,
                limit_bytes: self.limits.memory_limit_bytes,
                reason: message,
            },
            Stop::Failed { message, .. } => RuntimeError::Trap {
                function,
                reason: message,
            },
        }
    }

    fn trap(&self, error: wasmi::Error) -> RuntimeError {
        RuntimeError::Trap {
            function: self.function.name.to_string(),
            reason: error.to_string(),
        }
    }
}

/// `(ptr, len)` from the packed shape's `ptr << 32 | len`.
fn unpack_pointer_and_length(packed: i64) -> (u32, u32) {
    let bits = u64::from_ne_bytes(packed.to_ne_bytes());
    let [high, low] = [bits >> 32, bits & u64::from(u32::MAX)].map(|half| {
        u32::try_from(half).unwrap_or(u32::MAX) // both halves fit: never the fallback
    });
    (high, low)
}

/// The `i32` wasm sees for a 32-bit pattern (wasm's `i32` is sign-agnostic).
fn i32_bits(value: u32) -> i32 {
    i32::from_ne_bytes(value.to_ne_bytes())
}

/// The 32-bit pattern of a wasm `i32`, read as unsigned (a pointer or length).
fn u32_bits(value: i32) -> u32 {
    u32::from_ne_bytes(value.to_ne_bytes())
}

/// Reads a string-ABI result: `len` bytes at `ptr` of the instance's memory
/// `data`, which must lie inside it and be at most `cap` bytes (any bytes:
/// text or not). Copies nothing before those checks pass.
pub fn read_result(
    function: &str,
    data: &[u8],
    ptr: u32,
    len: u32,
    cap: usize,
) -> Result<Vec<u8>, RuntimeError> {
    if len as usize > cap {
        return Err(RuntimeError::OutputTooLarge {
            function: function.to_owned(),
            stream: "result",
            limit_bytes: cap,
        });
    }
    let output = (ptr as usize)
        .checked_add(len as usize)
        .and_then(|end| data.get(ptr as usize..end))
        .ok_or_else(|| RuntimeError::OutputOutOfBounds {
            function: function.to_owned(),
            ptr,
            len,
            memory_bytes: data.len(),
        })?;
    Ok(output.to_vec())
}

/// Pairs each parameter with its raw value: by name when the module names its
/// parameters and the request uses exactly those names, else by position.
fn bind_arguments<'a>(
    function: &str,
    params: &[ValType],
    param_names: Option<&[String]>,
    args: &'a InvocationArgs,
) -> Result<Vec<(String, &'a str)>, RuntimeError> {
    let pairs = args.pairs();
    if let Some(names) = param_names {
        let all_named =
            pairs.len() == names.len() && pairs.iter().all(|(key, _)| names.contains(key));
        if all_named {
            return Ok(names
                .iter()
                .map(|name| (name.clone(), args.get(name).unwrap_or_default()))
                .collect());
        }
    }
    if pairs.len() != params.len() {
        let expected: Vec<String> = match param_names {
            Some(names) => names
                .iter()
                .zip(params)
                .map(|(name, ty)| format!("{name}: {}", type_name(ty)))
                .collect(),
            None => params.iter().map(|ty| type_name(ty).to_owned()).collect(),
        };
        let given: Vec<&str> = pairs.iter().map(|(key, _)| key.as_str()).collect();
        return Err(RuntimeError::BadArguments {
            reason: format!(
                "function {function} takes {} argument(s) ({}), got {} ({}); pass them in order or by parameter name",
                params.len(),
                expected.join(", "),
                pairs.len(),
                given.join(", ")
            ),
        });
    }
    Ok(pairs
        .iter()
        .map(|(key, value)| (key.clone(), value.as_str()))
        .collect())
}

fn type_name(ty: &ValType) -> &'static str {
    match ty {
        ValType::I32 => "i32",
        ValType::I64 => "i64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        _ => "value",
    }
}

/// Parses decimal text as `ty`; integers also accept the unsigned range.
fn parse_number(raw: &str, ty: &ValType) -> Option<Val> {
    let raw = raw.trim();
    Some(match ty {
        ValType::I32 => Val::I32(
            raw.parse::<i32>()
                .ok()
                .or_else(|| raw.parse::<u32>().ok().map(i32_bits))?,
        ),
        ValType::I64 => Val::I64(raw.parse::<i64>().ok().or_else(|| {
            raw.parse::<u64>()
                .ok()
                .map(|v| i64::from_ne_bytes(v.to_ne_bytes()))
        })?),
        ValType::F32 => Val::F32(raw.parse::<f32>().ok()?.into()),
        ValType::F64 => Val::F64(raw.parse::<f64>().ok()?.into()),
        _ => return None,
    })
}

fn format_number(value: &Val) -> String {
    match value {
        Val::I32(v) => v.to_string(),
        Val::I64(v) => v.to_string(),
        Val::F32(v) => f32::from(*v).to_string(),
        Val::F64(v) => f64::from(*v).to_string(),
        other => format!("{other:?}"),
    }
}

/// A WASI stdout or stderr that keeps at most `cap` bytes: a write past the
/// cap fails (the function sees an I/O error) and marks it overflowed, so the
/// engine never holds more than the cap.
#[derive(Default)]
struct CappedBuffer {
    bytes: Vec<u8>,
    cap: usize,
    overflowed: bool,
}

impl CappedBuffer {
    fn new(cap: usize) -> Self {
        Self {
            bytes: Vec::new(),
            cap,
            overflowed: false,
        }
    }
}

impl std::io::Write for CappedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.cap {
            self.overflowed = true;
            return Err(std::io::Error::other("output limit reached"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    /// All slices at once, as `Vec<u8>` does: WASI's `fd_write` hands over
    /// its iovecs together and trusts the count returned.
    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        let total: usize = bufs.iter().map(|buf| buf.len()).sum();
        if self.bytes.len() + total > self.cap {
            self.overflowed = true;
            return Err(std::io::Error::other("output limit reached"));
        }
        for buf in bufs {
            self.bytes.extend_from_slice(buf);
        }
        Ok(total)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::function::{FunctionLimits, FunctionName};

    fn args(pairs: &[(&str, &str)]) -> InvocationArgs {
        InvocationArgs::from_pairs(
            pairs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        )
    }

    /// Deploys `wat` as the export `function` (not WASI) and invokes it.
    fn invoke(
        wat: &str,
        function: &str,
        limits: &FunctionLimits,
        pairs: &[(&str, &str)],
    ) -> Result<String, RuntimeError> {
        let runtime = Runtime::default();
        let name = FunctionName::new(function).expect("a valid function name");
        let compiled = runtime
            .prepare(&name, false, &wat::parse_str(wat).expect("valid WAT"))
            .expect("the module deploys");
        runtime
            .invoke(
                &compiled,
                &runtime.limits_for(limits),
                &Input::Args(args(pairs)),
            )
            .map(|output| String::from_utf8(output).expect("numbers are text"))
    }

    fn parsed(raw: &str, ty: ValType) -> Option<String> {
        parse_number(raw, &ty).map(|value| format_number(&value))
    }

    #[test]
    fn integers_take_the_signed_and_the_unsigned_range_and_nothing_beyond() {
        let table = [
            ("0", ValType::I32, Some("0")),
            ("-2147483648", ValType::I32, Some("-2147483648")),
            ("2147483647", ValType::I32, Some("2147483647")),
            // The unsigned range wraps to the same bits.
            ("4294967295", ValType::I32, Some("-1")),
            ("2147483648", ValType::I32, Some("-2147483648")),
            ("4294967296", ValType::I32, None),
            ("-2147483649", ValType::I32, None),
            ("18446744073709551615", ValType::I64, Some("-1")),
            (
                "-9223372036854775808",
                ValType::I64,
                Some("-9223372036854775808"),
            ),
            ("18446744073709551616", ValType::I64, None),
            // Surrounding whitespace is trimmed; nothing else is forgiven.
            (" 7\n", ValType::I32, Some("7")),
            ("+7", ValType::I32, Some("7")),
            ("", ValType::I32, None),
            ("1.5", ValType::I32, None),
            ("0x10", ValType::I64, None),
            ("1_000", ValType::I64, None),
            ("7 8", ValType::I32, None),
        ];
        for (raw, ty, expected) in table {
            assert_eq!(
                parsed(raw, ty),
                expected.map(str::to_owned),
                "{raw:?} as {ty:?}"
            );
        }
    }

    #[test]
    fn floats_take_rust_float_syntax_including_infinities_and_nan() {
        let table = [
            ("1.5", ValType::F32, Some("1.5")),
            ("1e3", ValType::F64, Some("1000")),
            ("-0.0", ValType::F64, Some("-0")),
            ("inf", ValType::F64, Some("inf")),
            ("-infinity", ValType::F32, Some("-inf")),
            ("NaN", ValType::F64, Some("NaN")),
            // Out of f32's range: infinity, as Rust parses it.
            ("1e39", ValType::F32, Some("inf")),
            ("1,5", ValType::F64, None),
            ("", ValType::F32, None),
        ];
        for (raw, ty, expected) in table {
            assert_eq!(
                parsed(raw, ty),
                expected.map(str::to_owned),
                "{raw:?} as {ty:?}"
            );
        }
    }

    #[test]
    fn reference_types_never_parse() {
        assert_eq!(parsed("0", ValType::FuncRef), None);
        assert_eq!(parsed("0", ValType::ExternRef), None);
    }

    #[test]
    fn arguments_bind_by_name_when_the_request_uses_exactly_the_parameter_names() {
        let params = [ValType::I32, ValType::I64];
        let names = ["a".to_owned(), "b".to_owned()];
        let request = args(&[("b", "2"), ("a", "1")]);
        let bound = bind_arguments("f", &params, Some(&names), &request).expect("binds");
        assert_eq!(bound, [("a".to_owned(), "1"), ("b".to_owned(), "2")]);
    }

    #[test]
    fn arguments_bind_by_position_when_the_names_differ_or_the_module_names_none() {
        let params = [ValType::I32, ValType::I32];
        let names = ["a".to_owned(), "b".to_owned()];
        let request = args(&[("y", "1"), ("x", "2")]);
        for names in [Some(&names[..]), None] {
            let bound = bind_arguments("f", &params, names, &request).expect("binds");
            assert_eq!(bound, [("y".to_owned(), "1"), ("x".to_owned(), "2")]);
        }
        // One name right and one wrong is not "by name".
        let mixed = args(&[("b", "1"), ("x", "2")]);
        let bound = bind_arguments("f", &params, Some(&names), &mixed).expect("binds");
        assert_eq!(bound, [("b".to_owned(), "1"), ("x".to_owned(), "2")]);
    }

    #[test]
    fn a_wrong_argument_count_names_the_parameters_and_what_came() {
        let params = [ValType::I32, ValType::F64];
        let names = ["a".to_owned(), "b".to_owned()];
        let request = args(&[("a", "1")]);
        let error = bind_arguments("gcd", &params, Some(&names), &request).expect_err("one short");
        assert_eq!(
            error.to_string(),
            RuntimeError::BadArguments {
                reason: "function gcd takes 2 argument(s) (a: i32, b: f64), got 1 (a); pass them in order or by parameter name".into()
            }
            .to_string()
        );
        let error = bind_arguments("gcd", &params, None, &args(&[])).expect_err("none given");
        assert!(
            error
                .to_string()
                .contains("takes 2 argument(s) (i32, f64), got 0 ()"),
            "{error}"
        );
    }

    #[test]
    fn the_numeric_abi_binds_parameter_names_from_the_name_section() {
        let wat = r#"(module (func (export "sub") (param $a i32) (param $b i32) (result i32)
                       (i32.sub (local.get $a) (local.get $b))))"#;
        let limits = FunctionLimits::default();
        assert_eq!(
            invoke(wat, "sub", &limits, &[("b", "3"), ("a", "10")]).unwrap(),
            "7"
        );
        assert_eq!(
            invoke(wat, "sub", &limits, &[("x", "3"), ("y", "10")]).unwrap(),
            "-7"
        );
        let error =
            invoke(wat, "sub", &limits, &[("a", "1"), ("b", "x")]).expect_err("not a number");
        assert!(
            error
                .to_string()
                .contains("argument b = \"x\" is not a valid i32 for function sub"),
            "{error}"
        );
    }

    #[test]
    fn the_numeric_abi_prints_every_result_separated_by_spaces() {
        let wat = r#"(module (func (export "many") (result i32 i64 f32 f64)
                       (i32.const -1) (i64.const 5000000000) (f32.const 0.5) (f64.const -2.25)))"#;
        let output = invoke(wat, "many", &FunctionLimits::default(), &[]);
        assert_eq!(output.unwrap(), "-1 5000000000 0.5 -2.25");
    }

    #[test]
    fn a_capped_buffer_keeps_writes_up_to_the_cap_and_refuses_the_rest_whole() {
        let mut buffer = CappedBuffer::new(8);
        buffer.write_all(b"12345").expect("within the cap");
        buffer.write_all(b"678").expect("exactly at the cap");
        assert!(!buffer.overflowed);
        let error = buffer.write(b"9").expect_err("past the cap");
        assert_eq!(error.to_string(), "output limit reached");
        assert!(buffer.overflowed);
        assert_eq!(buffer.bytes, b"12345678");
    }

    #[test]
    fn a_capped_buffer_takes_vectored_writes_all_or_nothing() {
        let mut buffer = CappedBuffer::new(6);
        let written = buffer
            .write_vectored(&[std::io::IoSlice::new(b"ab"), std::io::IoSlice::new(b"cd")])
            .expect("within the cap");
        assert_eq!(written, 4);
        buffer
            .write_vectored(&[std::io::IoSlice::new(b"e"), std::io::IoSlice::new(b"fg")])
            .expect_err("one byte past the cap");
        assert!(buffer.overflowed);
        assert_eq!(
            buffer.bytes, b"abcd",
            "nothing of the refused write is kept"
        );
    }

    #[test]
    fn a_string_result_must_lie_inside_memory_and_fit_the_cap_and_may_be_any_bytes() {
        let memory = b"hello, world\xff";
        let read = |ptr, len, cap| read_result("f", memory, ptr, len, cap);
        assert_eq!(read(0, 5, 100).unwrap(), b"hello");
        assert_eq!(read(7, 5, 5).unwrap(), b"world", "exactly the cap");
        assert_eq!(read(13, 0, 0).unwrap(), b"", "empty, at the very end");
        assert!(matches!(
            read(0, 6, 5),
            Err(RuntimeError::OutputTooLarge { limit_bytes: 5, .. })
        ));
        assert!(matches!(
            read(9, 5, 100),
            Err(RuntimeError::OutputOutOfBounds {
                ptr: 9,
                len: 5,
                memory_bytes: 13,
                ..
            })
        ));
        assert!(matches!(
            read(u32::MAX, 1, 100),
            Err(RuntimeError::OutputOutOfBounds { .. })
        ));
        assert_eq!(
            read(12, 1, 100).unwrap(),
            b"\xff",
            "bytes that are not UTF-8"
        );
        // The cap is checked first: a huge length costs nothing.
        assert!(matches!(
            read(0, u32::MAX, 100),
            Err(RuntimeError::OutputTooLarge { .. })
        ));
    }

    #[test]
    fn a_packed_result_splits_into_pointer_and_length() {
        assert_eq!(unpack_pointer_and_length(0x0000_0010_0000_0005), (16, 5));
        assert_eq!(unpack_pointer_and_length(-1), (u32::MAX, u32::MAX));
        assert_eq!(u32_bits(i32_bits(0xffff_fff0)), 0xffff_fff0);
    }

    /// A loop of `n` iterations, each a few instructions (a little fuel).
    const COUNTDOWN: &str = r#"(module (func (export "countdown") (param $n i64) (result i64)
        (block $done (loop $again
          (br_if $done (i64.eqz (local.get $n)))
          (local.set $n (i64.sub (local.get $n) (i64.const 1)))
          (br $again)))
        (local.get $n)))"#;

    /// Limits whose time limit only turns a hang into a failure (debug
    /// builds interpret slowly), with an optional fuel budget.
    fn generous_time(fuel: Option<u64>) -> FunctionLimits {
        FunctionLimits {
            timeout_ms: Some(600_000),
            fuel,
            ..FunctionLimits::default()
        }
    }

    #[test]
    fn calls_longer_than_one_fuel_slice_run_to_the_end_without_a_budget() {
        // Several instructions an iteration: a few slices' worth of fuel.
        let iterations = (FUEL_SLICE / 2).to_string();
        let output = invoke(
            COUNTDOWN,
            "countdown",
            &generous_time(None),
            &[("n", &iterations)],
        );
        assert_eq!(output.unwrap(), "0");
    }

    #[test]
    fn a_fuel_budget_is_spent_across_slices_and_then_stops_the_call() {
        let with_fuel = |fuel| generous_time(Some(fuel));
        // A budget of several slices stops a call needing more than that...
        let error = invoke(
            COUNTDOWN,
            "countdown",
            &with_fuel(3 * FUEL_SLICE + 7),
            &[("n", "100000000")],
        )
        .expect_err("the budget runs out");
        assert!(
            matches!(error, RuntimeError::FuelExhausted { fuel, .. } if fuel == 3 * FUEL_SLICE + 7),
            "{error}"
        );
        // ...and lets one needing less finish, even past one slice (one
        // slice's fuel is not enough for it).
        let iterations = (FUEL_SLICE / 2).to_string();
        let error = invoke(
            COUNTDOWN,
            "countdown",
            &with_fuel(FUEL_SLICE),
            &[("n", &iterations)],
        )
        .expect_err("the call needs more than one slice");
        assert!(
            matches!(error, RuntimeError::FuelExhausted { .. }),
            "{error}"
        );
        let output = invoke(
            COUNTDOWN,
            "countdown",
            &with_fuel(20 * FUEL_SLICE),
            &[("n", &iterations)],
        );
        assert_eq!(output.unwrap(), "0");
        // A budget below one slice is still a budget.
        let error = invoke(
            COUNTDOWN,
            "countdown",
            &with_fuel(1_000),
            &[("n", "100000")],
        )
        .expect_err("a thousand fuel is not enough");
        assert!(
            matches!(error, RuntimeError::FuelExhausted { fuel: 1_000, .. }),
            "{error}"
        );
        assert_eq!(
            invoke(COUNTDOWN, "countdown", &with_fuel(1_000), &[("n", "10")]).unwrap(),
            "0"
        );
    }

    #[test]
    fn the_deadline_is_checked_between_fuel_slices() {
        let spin = r#"(module (func (export "spin") (loop $again (br $again))))"#;
        let limits = FunctionLimits {
            timeout_ms: Some(1),
            ..FunctionLimits::default()
        };
        let error = invoke(spin, "spin", &limits, &[]).expect_err("an endless loop times out");
        assert!(
            matches!(error, RuntimeError::Timeout { timeout_ms: 1, .. }),
            "{error}"
        );
    }
}
