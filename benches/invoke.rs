//! Per-invocation cost inside the process, through the code path the server
//! uses (`Runtime::invoke`: fresh store and instance, args marshalled, call,
//! output read), excluding HTTP; and module compile time (the deploy path).
//!
//! `authentication` and `authentication-wasi` come from the built examples
//! (`make apps`), each in its small build (2 initial pages) and its stock
//! build (`_stock`: default linker settings, 17 pages), and `gcd_app` from
//! the `gcd` example; `gcd`, `echo_string` and `wasi_empty` from WAT in
//! `benches/`. `benches/load.sh` compares `gcd_app`, `authentication_stock`
//! and `authentication-wasi_stock` with the same calls over HTTP.
//!
//! `INVOKE_CPU_TIME=1` measures the invocations' CPU time (the thread's
//! `CLOCK_THREAD_CPUTIME_ID`) instead of wall time: steadier on a machine
//! shared with other work. `WASM_ENGINE_MEMORY_POOL=off` runs them without
//! the pool of linear memories (`runtime::memory_pool`), for comparison.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use wasm_engine::function::{FunctionLimits, FunctionName, Input, InvocationArgs};
use wasm_engine::runtime::{Runtime, RuntimeOptions};

struct Case {
    /// The benchmark's label.
    name: &'static str,
    /// The function name it is deployed under (its export, for the plain ABIs).
    function: &'static str,
    wasi_cap: bool,
    wasm: Vec<u8>,
    args: Input,
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn wat(file: &str) -> Vec<u8> {
    wat::parse_file(manifest_dir().join("benches").join(file)).expect("benchmark WAT compiles")
}

/// An example's build: `build` is `""` for the small build, `"stock"` for
/// the build with the toolchain's default linker settings (17 pages).
fn example(name: &str, build: &str, target: &str) -> Vec<u8> {
    let path: PathBuf = manifest_dir()
        .join("experiments/application")
        .join(name)
        .join("target")
        .join(build)
        .join(target)
        .join("release")
        .join(format!("{name}.wasm"));
    std::fs::read(&path)
        .unwrap_or_else(|error| panic!("{}: {error}; run `make apps` first", path.display()))
}

fn args(pairs: &[(&str, &str)]) -> Input {
    Input::Args(InvocationArgs::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ))
}

fn cases() -> Vec<Case> {
    let auth_args = args(&[
        ("arg_uri", "yes"),
        ("arg_body", "yes"),
        ("arg_secret", "12345"),
    ]);
    vec![
        Case {
            name: "gcd",
            function: "gcd",
            wasi_cap: false,
            wasm: wat("gcd.wat"),
            args: args(&[("a", "1071"), ("b", "462")]),
        },
        // The example `benches/load.sh` deploys as `gcd`: its over-HTTP
        // cost is compared with this one's.
        Case {
            name: "gcd_app",
            function: "gcd",
            wasi_cap: false,
            wasm: example("gcd", "", "wasm32-unknown-unknown"),
            args: args(&[("a", "1071"), ("b", "462")]),
        },
        Case {
            name: "echo_string",
            function: "echo_string",
            wasi_cap: false,
            wasm: wat("echo_string.wat"),
            args: args(&[("a", "hello"), ("b", "world")]),
        },
        Case {
            name: "authentication",
            function: "authentication",
            wasi_cap: false,
            wasm: example("authentication", "", "wasm32-unknown-unknown"),
            args: auth_args.clone(),
        },
        Case {
            name: "authentication_stock",
            function: "authentication",
            wasi_cap: false,
            wasm: example("authentication", "stock", "wasm32-unknown-unknown"),
            args: auth_args.clone(),
        },
        Case {
            name: "authentication-wasi",
            function: "authentication-wasi",
            wasi_cap: true,
            wasm: example("authentication-wasi", "", "wasm32-wasip1"),
            args: auth_args.clone(),
        },
        Case {
            name: "authentication-wasi_stock",
            function: "authentication-wasi",
            wasi_cap: true,
            wasm: example("authentication-wasi", "stock", "wasm32-wasip1"),
            args: auth_args,
        },
        Case {
            name: "wasi_empty",
            function: "wasi_empty",
            wasi_cap: true,
            wasm: wat("wasi_empty.wat"),
            args: args(&[]),
        },
    ]
}

fn invoke(c: &mut Criterion) {
    // As `wasm_engine` does at startup. SAFETY: no other thread runs yet.
    unsafe { wasm_engine::cli::disable_library_backtraces() };
    let runtime = Runtime::new(RuntimeOptions::default());
    let limits = runtime.limits_for(&FunctionLimits::default());
    let cpu_time = std::env::var_os("INVOKE_CPU_TIME").is_some_and(|value| value == "1");
    let mut group = c.benchmark_group("invoke");
    for case in cases() {
        let name = FunctionName::new(case.function).unwrap();
        let compiled = runtime
            .prepare(&name, case.wasi_cap, &case.wasm)
            .expect("benchmark module deploys");
        // Check the answer once, so the benchmark measures a working call.
        let output = runtime
            .invoke(&compiled, &limits, &case.args)
            .expect("benchmark call succeeds");
        assert!(
            !output.is_empty() || case.name == "wasi_empty",
            "{}: empty output",
            case.name
        );
        group.bench_function(case.name, |b| {
            if cpu_time {
                b.iter_custom(|iterations| {
                    let start = thread_cpu_time();
                    for _ in 0..iterations {
                        std::hint::black_box(runtime.invoke(&compiled, &limits, &case.args))
                            .unwrap();
                    }
                    thread_cpu_time() - start
                })
            } else {
                b.iter(|| runtime.invoke(&compiled, &limits, &case.args).unwrap())
            }
        });
    }
    group.finish();
}

/// CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(
        u64::try_from(now.tv_sec).expect("positive"),
        u32::try_from(now.tv_nsec).expect("below a second"),
    )
}

fn compile(c: &mut Criterion) {
    let runtime = Runtime::new(RuntimeOptions::default());
    let mut group = c.benchmark_group("compile");
    for case in cases() {
        let name = FunctionName::new(case.function).unwrap();
        group.bench_function(case.name, |b| {
            b.iter(|| runtime.prepare(&name, case.wasi_cap, &case.wasm).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, invoke, compile);
criterion_main!(benches);
