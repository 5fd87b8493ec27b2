//! One invocation under each ABI: a fresh `Store` and instance, arguments in,
//! output out. See `docs/abi.md` for the contracts.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use wasmi::{Func, Memory, ResumableCall, Store, Val, ValType};
use wasmi_wasi::WasiCtxBuilder;
use wasmi_wasi::wasi_common::pipe::{ReadPipe, WritePipe};

use super::{CompiledFunction, PlainState, Runtime, RuntimeError, WasiState};
use crate::function::InvocationArgs;

const WASM_PAGE_BYTES: u64 = 65_536;
/// Fuel granted per slice; the deadline is checked between slices. About a
/// millisecond of interpretation here, so a call overruns its deadline by
/// about that much at most (plus any single host call).
const FUEL_SLICE: u64 = 1_000_000;
/// Fuel for instantiation (a module's start function), which is not resumable.
const INSTANTIATION_FUEL: u64 = 100 * FUEL_SLICE;

/// Why a metered call stopped without finishing.
enum Stop {
    /// The deadline passed.
    Timeout,
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

/// Calls `func`, granting fuel one slice at a time and checking the clock
/// between slices: a wall-clock deadline for an interpreter.
fn call_until<T>(
    store: &mut Store<T>,
    func: Func,
    inputs: &[Val],
    outputs: &mut [Val],
    deadline: Instant,
) -> Result<(), Stop> {
    store.set_fuel(FUEL_SLICE)?;
    let mut call = func.call_resumable(&mut *store, inputs, outputs)?;
    loop {
        match call {
            ResumableCall::Finished => return Ok(()),
            ResumableCall::HostTrap(trap) => return Err(Stop::from(trap.host_error())),
            ResumableCall::OutOfFuel(out_of_fuel) => {
                if Instant::now() >= deadline {
                    return Err(Stop::Timeout);
                }
                store.set_fuel(FUEL_SLICE)?;
                call = out_of_fuel.resume(&mut *store, outputs)?;
            }
        }
    }
}

impl Stop {
    fn into_error(self, runtime: &Runtime, function: &CompiledFunction) -> RuntimeError {
        match self {
            Stop::Timeout => RuntimeError::Timeout {
                function: function.name.to_string(),
                timeout_ms: runtime.timeout.as_millis() as u64,
            },
            Stop::Failed { message, .. } => RuntimeError::Trap {
                function: function.name.to_string(),
                reason: message,
            },
        }
    }
}

fn export(
    function: &CompiledFunction,
    instance: &wasmi::Instance,
    store: &impl wasmi::AsContext,
    name: &str,
) -> Result<Func, RuntimeError> {
    instance.get_func(store, name).ok_or_else(|| {
        trap(
            function,
            wasmi::Error::new(format!("export {name} vanished")),
        )
    })
}
/// How much of a failing WASI function's stderr an error message quotes.
const STDERR_TAIL_BYTES: usize = 512;

fn plain_instance(
    runtime: &Runtime,
    function: &CompiledFunction,
    deadline: Instant,
) -> Result<(Store<PlainState>, wasmi::Instance), RuntimeError> {
    let mut store = Store::new(
        &runtime.engine,
        PlainState {
            limits: runtime.limits(),
        },
    );
    store.limiter(|state| &mut state.limits);
    store
        .set_fuel(INSTANTIATION_FUEL)
        .expect("the engine meters fuel");
    let instance = runtime
        .plain_linker
        .instantiate_and_start(&mut store, &function.module)
        .map_err(|error| RuntimeError::Instantiation {
            function: function.name.to_string(),
            reason: error.to_string(),
        })?;
    if function.calls_initialize {
        let initialize = export(function, &instance, &store, "_initialize")?;
        call_until(&mut store, initialize, &[], &mut [], deadline).map_err(|stop| match stop {
            Stop::Timeout => stop.into_error(runtime, function),
            Stop::Failed { message, .. } => RuntimeError::Instantiation {
                function: function.name.to_string(),
                reason: format!("_initialize failed: {message}"),
            },
        })?;
    }
    Ok((store, instance))
}

fn trap(function: &CompiledFunction, error: wasmi::Error) -> RuntimeError {
    RuntimeError::Trap {
        function: function.name.to_string(),
        reason: error.to_string(),
    }
}

/// The string ABI: write the args JSON at the start of freshly grown pages,
/// call `f(ptr, len)`, read the `(ptr, len)` it returns as UTF-8.
pub fn string_abi(
    runtime: &Runtime,
    function: &CompiledFunction,
    args: &InvocationArgs,
) -> Result<String, RuntimeError> {
    let deadline = Instant::now() + runtime.timeout;
    let (mut store, instance) = plain_instance(runtime, function, deadline)?;
    let name = function.name.as_str();
    let memory: Memory =
        instance
            .get_memory(&store, "memory")
            .ok_or_else(|| RuntimeError::MissingMemory {
                function: name.to_owned(),
            })?;
    let entry = export(function, &instance, &store, name)?;

    let input = args.to_json();
    let pages = (input.len() as u64).div_ceil(WASM_PAGE_BYTES).max(1);
    let old_pages = memory
        .grow(&mut store, pages)
        .map_err(|error| RuntimeError::BadArguments {
            reason: format!(
                "the {} byte arguments do not fit in function {name}'s memory: {error}",
                input.len()
            ),
        })?;
    let input_ptr = old_pages * WASM_PAGE_BYTES;
    memory
        .write(&mut store, input_ptr as usize, input.as_bytes())
        .map_err(|error| trap(function, error.into()))?;

    let mut outputs = [Val::I32(0), Val::I32(0)];
    call_until(
        &mut store,
        entry,
        &[
            Val::I32(input_ptr as u32 as i32),
            Val::I32(input.len() as i32),
        ],
        &mut outputs,
        deadline,
    )
    .map_err(|stop| stop.into_error(runtime, function))?;
    let (Val::I32(output_ptr), Val::I32(output_len)) = (&outputs[0], &outputs[1]) else {
        return Err(trap(
            function,
            wasmi::Error::new("the string ABI returns two i32"),
        ));
    };
    let (output_ptr, output_len) = (*output_ptr as u32, *output_len as u32);
    let data = memory.data(&store);
    let output = (output_ptr as usize)
        .checked_add(output_len as usize)
        .and_then(|end| data.get(output_ptr as usize..end))
        .ok_or_else(|| RuntimeError::OutputOutOfBounds {
            function: name.to_owned(),
            ptr: output_ptr,
            len: output_len,
            memory_bytes: data.len(),
        })?;
    String::from_utf8(output.to_vec()).map_err(|_| RuntimeError::OutputNotUtf8 {
        function: name.to_owned(),
    })
}

/// The numeric ABI: parse each argument as its parameter's type, call, and
/// print the results as decimal text separated by spaces.
pub fn numeric_abi(
    runtime: &Runtime,
    function: &CompiledFunction,
    params: &[ValType],
    param_names: Option<&[String]>,
    args: &InvocationArgs,
) -> Result<String, RuntimeError> {
    let raw_values = bind_arguments(function.name.as_str(), params, param_names, args)?;
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
    let deadline = Instant::now() + runtime.timeout;
    let (mut store, instance) = plain_instance(runtime, function, deadline)?;
    let func = export(function, &instance, &store, function.name.as_str())?;
    let mut results: Vec<Val> = func
        .ty(&store)
        .results()
        .iter()
        .map(|ty| Val::default_for_ty(*ty))
        .collect();
    call_until(&mut store, func, &values, &mut results, deadline)
        .map_err(|stop| stop.into_error(runtime, function))?;
    Ok(results
        .iter()
        .map(format_number)
        .collect::<Vec<_>>()
        .join(" "))
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
                .or_else(|| raw.parse::<u32>().ok().map(|v| v as i32))?,
        ),
        ValType::I64 => Val::I64(
            raw.parse::<i64>()
                .ok()
                .or_else(|| raw.parse::<u64>().ok().map(|v| v as i64))?,
        ),
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

/// WASI: run `_start` with `argv = [args JSON]`, the same JSON on stdin, no
/// environment, no preopened directories; stdout (one trailing newline
/// removed) is the output.
pub fn wasi(
    runtime: &Runtime,
    function: &CompiledFunction,
    args: &InvocationArgs,
) -> Result<String, RuntimeError> {
    let deadline = Instant::now() + runtime.timeout;
    let input = args.to_json();
    let stdout = Arc::new(RwLock::new(Vec::<u8>::new()));
    let stderr = Arc::new(RwLock::new(Vec::<u8>::new()));
    let wasi = WasiCtxBuilder::new()
        .arg(&input)
        .map_err(|error| RuntimeError::BadArguments {
            reason: format!("the arguments cannot be passed as argv: {error}"),
        })?
        .stdin(Box::new(ReadPipe::from(input.into_bytes())))
        .stdout(Box::new(WritePipe::from_shared(stdout.clone())))
        .stderr(Box::new(WritePipe::from_shared(stderr.clone())))
        .build();
    let mut store = Store::new(
        &runtime.engine,
        WasiState {
            limits: runtime.limits(),
            wasi,
        },
    );
    store.limiter(|state| &mut state.limits);
    store
        .set_fuel(INSTANTIATION_FUEL)
        .expect("the engine meters fuel");
    let instance = runtime
        .wasi_linker
        .instantiate_and_start(&mut store, &function.module)
        .map_err(|error| RuntimeError::Instantiation {
            function: function.name.to_string(),
            reason: error.to_string(),
        })?;
    let start = export(function, &instance, &store, "_start")?;
    let outcome = call_until(&mut store, start, &[], &mut [], deadline);
    drop(store);
    let take = |buffer: &Arc<RwLock<Vec<u8>>>| {
        std::mem::take(
            &mut *buffer
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    };
    match outcome {
        Ok(())
        | Err(Stop::Failed {
            exit_status: Some(0),
            ..
        }) => {
            let mut output = take(&stdout);
            if output.last() == Some(&b'\n') {
                output.pop();
            }
            Ok(String::from_utf8_lossy(&output).into_owned())
        }
        Err(Stop::Failed {
            exit_status: Some(exit_code),
            ..
        }) => {
            let stderr = take(&stderr);
            let tail = &stderr[stderr.len().saturating_sub(STDERR_TAIL_BYTES)..];
            Err(RuntimeError::NonZeroExit {
                function: function.name.to_string(),
                exit_code,
                stderr_tail: String::from_utf8_lossy(tail).trim().to_owned(),
            })
        }
        Err(stop) => Err(stop.into_error(runtime, function)),
    }
}
