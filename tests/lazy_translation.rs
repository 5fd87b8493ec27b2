//! Lazy translation under fuel metering: the interpreter translates a
//! function on its first call and charges that to the call's fuel, which the
//! engine grants in slices. A first call must succeed wherever in a slice it
//! happens and however large the function is (issue 10: a 480 KB Markdown
//! renderer from crates.io answered 500 "ran out of fuel while calling a
//! resumable function" on its first invocation).

use std::fmt::Write;

use crate::support::{Engine, Registry};

/// Functions in the generated module, each called for the first time once
/// per deployment.
const FUNCTIONS: usize = 200;
/// Fresh deployments of the same image: each translates every function anew,
/// at other points of the call's fuel.
const DEPLOYMENTS: usize = 3;
/// `memory.fill` costs one fuel per 64 bytes: the burn spans two of the
/// engine's one-million-fuel slices.
const MAX_BURN_BYTES: u64 = 128 << 20;
/// The burn fills at most this much at once (the module's memory).
const FILL_CHUNK_BYTES: u32 = 1 << 20;

/// How many arithmetic statements function `k` has: most from 100 to 1,200
/// (14 bytes of code each, whose translation costs 98 fuel: 1.4 to 17 KB and
/// 10,000 to 118,000 fuel), and every hundredth 12,000 (168 KB, 1,176,000
/// fuel: more than one slice holds).
fn statements(k: usize) -> usize {
    if k % 100 == 99 {
        12_000
    } else {
        100 + (k * 37 % 12) * 100
    }
}

/// The constant of statement `j` of function `k`: at least 2^27, so that
/// each takes five bytes of LEB128 and the code is large.
fn constant(k: usize, j: usize) -> i32 {
    ((k as u64 * 1_000_003 + j as u64 * 7_919) % 0x7000_0000 + 0x0800_0000) as i32
}

/// What function `k` computes from `x`: `x = x * 31 ^ c` for each constant.
fn expected(k: usize, x: i32) -> i32 {
    (0..statements(k)).fold(x, |x, j| x.wrapping_mul(31) ^ constant(k, j))
}

/// The fuel point of the first call of function `k` in deployment `round`,
/// as bytes for `memory.fill` to burn first: spread over the slices.
fn burn_bytes(k: usize, round: usize) -> u32 {
    ((k as u64 * 2_654_435_761 + round as u64 * 40_503 * 1_021) % MAX_BURN_BYTES) as u32
}

/// A module exporting `run(burn_bytes, k)` under each of `export_names`: it
/// burns fuel with `memory.fill`, then calls function `k` through a table
/// with `burn_bytes` as the argument.
fn generated_module(export_names: &[String]) -> String {
    let mut wat = String::new();
    wat.push_str("(module\n  (type $unary (func (param i32) (result i32)))\n");
    let _ = writeln!(wat, "  (memory {})", FILL_CHUNK_BYTES / 65_536);
    let _ = writeln!(wat, "  (table {FUNCTIONS} funcref)");
    wat.push_str("  (elem (i32.const 0) func");
    for k in 0..FUNCTIONS {
        let _ = write!(wat, " $f{k}");
    }
    wat.push_str(")\n  (func $run");
    for name in export_names {
        let _ = write!(wat, " (export \"{name}\")");
    }
    let _ = write!(
        wat,
        r#" (param $burn_bytes i32) (param $k i32) (result i32)
    (local $left i32)
    (local.set $left (local.get $burn_bytes))
    (block $done
      (loop $chunk
        (br_if $done (i32.le_u (local.get $left) (i32.const {FILL_CHUNK_BYTES})))
        (memory.fill (i32.const 0) (i32.const 0) (i32.const {FILL_CHUNK_BYTES}))
        (local.set $left (i32.sub (local.get $left) (i32.const {FILL_CHUNK_BYTES})))
        (br $chunk)))
    (memory.fill (i32.const 0) (i32.const 0) (local.get $left))
    (call_indirect (type $unary) (local.get $burn_bytes) (local.get $k)))
"#
    );
    for k in 0..FUNCTIONS {
        let _ = writeln!(wat, "  (func $f{k} (type $unary)");
        for j in 0..statements(k) {
            let _ = writeln!(
                wat,
                "    local.get 0 i32.const 31 i32.mul i32.const {} i32.xor local.set 0",
                constant(k, j)
            );
        }
        wat.push_str("    local.get 0)\n");
    }
    wat.push_str(")\n");
    wat
}

#[test]
fn first_calls_of_large_functions_succeed_at_any_point_of_a_fuel_slice() {
    let registry = Registry::start();
    let engine = Engine::start();
    let names: Vec<String> = (0..DEPLOYMENTS)
        .map(|round| format!("first-calls-{round}"))
        .collect();
    let image = registry.push_wat(
        &generated_module(&names),
        "first-calls.wasm",
        "first-calls:v1",
    );
    let mut failures = Vec::new();
    let mut invocations = 0;
    for (round, name) in names.iter().enumerate() {
        engine.deploy(name, &image, false);
        for k in 0..FUNCTIONS {
            let burn = burn_bytes(k, round);
            let reply = engine.invoke(
                name,
                serde_json::json!({"burn_bytes": burn.to_string(), "k": k.to_string()}),
            );
            invocations += 1;
            let want = expected(k, burn as i32).to_string();
            if (reply.status, reply.body.as_str())
                != (200, format!("status code: 200, message: {want}").as_str())
            {
                failures.push(format!(
                    "{name}: function {k} ({} statements) first called after burning {burn} bytes: expected 200 {want}, got {}",
                    statements(k),
                    reply.body
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {invocations} first calls failed; the first ten:\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
}
