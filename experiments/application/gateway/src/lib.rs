//! `gateway`, string ABI: checks a request with `authentication`, and only
//! when it passes, answers with what `hello` says to `name`. It calls both
//! through the engine (`wasm_engine::call`), so it is deployed with
//! `"calls": ["authentication", "hello"]`.
//!
//! Arguments: `arg_uri`, `arg_body`, `arg_secret` (as `authentication`
//! takes them) and `name` (optional, for `hello`). The answer is
//! authentication's own 403 when it refuses, `{"status":"200","body":"<hello's
//! output>"}` when it passes, and `{"status":"502","body":"<callee>: <why>"}`
//! when a call fails.

use wasm_engine_sdk::{Args, CallError, call, push_json_string};

#[global_allocator]
static ALLOCATOR: wasm_engine_sdk::BumpAllocator = wasm_engine_sdk::BumpAllocator;

fn gateway(args: &Args) -> Result<String, String> {
    let mut credentials = String::from("{");
    for (index, key) in ["arg_uri", "arg_body", "arg_secret"].into_iter().enumerate() {
        if index > 0 {
            credentials.push(',');
        }
        push_json_string(&mut credentials, key);
        credentials.push(':');
        push_json_string(&mut credentials, args.get(key)?);
    }
    credentials.push('}');
    let verdict = match call("authentication", credentials.as_bytes()) {
        Ok(verdict) => verdict,
        Err(error) => return Ok(bad_gateway("authentication", error)),
    };
    if !verdict.starts_with("{\"status\":\"200\"") {
        return Ok(verdict);
    }
    let mut greeting = String::from("{\"name\":");
    push_json_string(&mut greeting, args.get_or("name").unwrap_or("world"));
    greeting.push('}');
    match call("hello", greeting.as_bytes()) {
        Ok(hello) => {
            let mut answer = String::from("{\"status\":\"200\",\"body\":");
            push_json_string(&mut answer, &hello);
            answer.push('}');
            Ok(answer)
        }
        Err(error) => Ok(bad_gateway("hello", error)),
    }
}

/// `{"status":"502","body":"<callee>: <why>"}`.
fn bad_gateway(callee: &str, error: CallError) -> String {
    let mut why = String::from(callee);
    why.push_str(": ");
    why.push_str(error.describe());
    let mut answer = String::from("{\"status\":\"502\",\"body\":");
    push_json_string(&mut answer, &why);
    answer.push('}');
    answer
}

wasm_engine_sdk::export_string_function!("gateway", gateway);
