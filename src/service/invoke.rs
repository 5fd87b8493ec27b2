//! Invocation: [`FunctionService::invoke`] runs a deployed function for a
//! request, and `CallRouter` (the runtime's [`Callees`]) runs a callee of
//! `wasm_engine::call`; both through `run_deployed`, which counts the run
//! in the function's metrics and writes its stderr and failure to its log.

use std::sync::Arc;
use std::time::Instant;

use super::FunctionService;
#[cfg(feature = "calls")]
use super::deployed::Deployed;
use super::deployed::DeployedFunction;
use super::error::ServiceError;
use super::secrets::secrets_of;
use crate::call::CallId;
use crate::function::{AnswerSettings, FunctionName, Input};
use crate::metrics::{FunctionMetrics, InvocationOutcome};
use crate::runtime::{Abi, CallSetup, Callees, Run, Runtime, RuntimeError, Within};
use crate::secret::Secret;
#[cfg(feature = "calls")]
use crate::store::SecretStore;

/// The outcome of [`FunctionService::invoke`], with the function's metrics
/// (when it is deployed) so that the caller can count the status it answers.
/// (Not to be confused with the runtime's `invoke::Invocation`, one call's
/// state inside the interpreter.)
pub struct Invoked {
    /// The output as the function wrote it: any bytes.
    pub output: Result<Vec<u8>, ServiceError>,
    pub metrics: Option<Arc<FunctionMetrics>>,
    /// What the output is (so the caller can read it as an HTTP answer the
    /// ABI's way), when the function is deployed.
    pub output_kind: Option<OutputKind>,
    /// How its annotations say to answer it (default when not deployed).
    pub answer_settings: AnswerSettings,
}

/// What an invocation's output is, by the function's ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// A WASI function's stdout.
    Stdout,
    /// A string-ABI function's result.
    StringResult,
    /// A numeric-ABI function's results, as decimal text.
    Numbers,
}

impl OutputKind {
    fn of(abi: &Abi) -> Self {
        match abi {
            Abi::Wasi => Self::Stdout,
            Abi::String(_) => Self::StringResult,
            Abi::Numeric { .. } => Self::Numbers,
        }
    }
}

impl FunctionService {
    /// Runs a function in a fresh instance: its output, or
    /// [`ServiceError::NotDeployed`] or the invocation's [`RuntimeError`].
    ///
    /// The run is counted in the function's metrics (duration, limits hit);
    /// what a WASI function wrote to stderr, and the reason of a failure at
    /// run time, go to its log under `call_id`.
    pub fn invoke(&self, name: &FunctionName, input: &Input, call_id: &CallId) -> Invoked {
        let deployed = match self.get(name) {
            Ok(deployed) => deployed,
            Err(error) => {
                return Invoked {
                    output: Err(error),
                    metrics: None,
                    output_kind: None,
                    answer_settings: AnswerSettings::default(),
                };
            }
        };
        let secrets = match secrets_of(&self.secrets, &deployed.entry) {
            Ok(secrets) => secrets,
            Err(error) => {
                return Invoked {
                    output: Err(error.into()),
                    metrics: Some(deployed.metrics.clone()),
                    output_kind: Some(OutputKind::of(deployed.compiled.abi())),
                    answer_settings: AnswerSettings::of(&deployed.entry.metadata),
                };
            }
        };
        // Tests wait for this line to know a call holds its module.
        log::debug!("calling {name}");
        let run = run_deployed(
            &self.runtime,
            &deployed,
            input,
            &secrets,
            call_id,
            None,
            self.callees.as_ref(),
        );
        drop(secrets);
        Invoked {
            output: run.output.map_err(ServiceError::from),
            metrics: Some(deployed.metrics.clone()),
            output_kind: Some(OutputKind::of(deployed.compiled.abi())),
            answer_settings: AnswerSettings::of(&deployed.entry.metadata),
        }
    }
}

/// Runs `deployed` in a fresh instance with its `secrets` (for a request,
/// or for a `wasm_engine::call` when `within` is set), counts the run in
/// its metrics and logs its stderr and failure under `call_id`.
fn run_deployed(
    runtime: &Runtime,
    deployed: &DeployedFunction,
    input: &Input,
    secrets: &[Secret],
    call_id: &CallId,
    within: Option<&Within>,
    callees: Option<&Arc<dyn Callees>>,
) -> Run {
    let mut stderr = Vec::new();
    let started = Instant::now();
    let setup = CallSetup {
        env: &deployed.env,
        secrets,
        calls: &deployed.calls,
        callees,
        call_id,
    };
    let run = runtime.run(
        &deployed.compiled,
        &deployed.limits,
        input,
        &setup,
        within,
        &mut stderr,
    );
    let outcome = match &run.output {
        Err(RuntimeError::Timeout { .. }) => InvocationOutcome::Timeout,
        Err(RuntimeError::FuelExhausted { .. }) => InvocationOutcome::FuelExhausted,
        Err(RuntimeError::MemoryLimit { .. }) => InvocationOutcome::MemoryLimit,
        Err(RuntimeError::OutputTooLarge { .. }) => InvocationOutcome::OutputLimit,
        _ => InvocationOutcome::Ended,
    };
    deployed.metrics.record_run(started.elapsed(), outcome);
    deployed
        .log
        .append_stderr(call_id, &deployed.version, &stderr);
    if let Err(error) = &run.output {
        if let Some(reason) = failure_log_line(error) {
            deployed
                .log
                .append_engine(call_id, &deployed.version, &reason);
        }
    }
    run
}

/// The runtime's [`Callees`]: finds a callee in the deployed map and runs
/// it as a request would (with its secrets), counted and logged as the
/// callee's.
#[cfg(feature = "calls")]
pub(super) struct CallRouter {
    pub(super) runtime: Arc<Runtime>,
    pub(super) deployed: Arc<Deployed>,
    pub(super) secrets: Arc<SecretStore>,
}

#[cfg(feature = "calls")]
impl Callees for CallRouter {
    fn call(&self, callee: &FunctionName, input: &Input, within: &Within) -> Option<Run> {
        let deployed = self.deployed.get(callee)?;
        // As for a request's call: tests wait for it.
        log::debug!("calling {callee} (called by another function)");
        deployed.metrics.count_nested_call();
        let secrets = match secrets_of(&self.secrets, &deployed.entry) {
            Ok(secrets) => secrets,
            Err(error) => {
                // The callee cannot run: the caller gets "failed" (-3).
                return Some(Run {
                    output: Err(RuntimeError::Instantiation {
                        function: callee.to_string(),
                        reason: error.to_string(),
                    }),
                    fuel_used: 0,
                });
            }
        };
        Some(run_deployed(
            &self.runtime,
            &deployed,
            input,
            &secrets,
            within.call_id(),
            Some(within),
            Some(within.callees()),
        ))
    }
}

/// The engine's line in a function's log about a call that failed at run
/// time, or `None` for failures that are the caller's (bad arguments, whose
/// message would hold them). It never holds arguments or output.
fn failure_log_line(error: &RuntimeError) -> Option<String> {
    match error {
        RuntimeError::BadArguments { .. } => None,
        // The stderr it names is in the log already, line by line.
        RuntimeError::NonZeroExit { exit_code, .. } => {
            Some(format!("call failed: exited with code {exit_code}"))
        }
        other => Some(format!("call failed: {other}")),
    }
}
