//! The authentication check, shared by the string-ABI and WASI builds.

use wasm_engine_sdk::{Args, hex, push_json_string};

/// `hash` = lowercase hex MD5 of `"<arg_uri>#<arg_body>#argfunc"`; the answer
/// is a 200 page when `arg_secret` equals it, else a 403 page.
///
/// # Errors
/// A message naming the first missing argument.
pub fn authenticate(args: &Args) -> Result<String, String> {
    let uri = args.get("arg_uri")?;
    let body = args.get("arg_body")?;
    let secret = args.get("arg_secret")?;
    // Plain string building rather than `format!`: `core::fmt` costs more
    // than the MD5 itself under an interpreter.
    let mut message = String::with_capacity(uri.len() + body.len() + 9);
    for part in [uri, "#", body, "#argfunc"] {
        message.push_str(part);
    }
    let hash = hex(&md5::compute(message.as_bytes()).0);
    let mut page = String::with_capacity(96 + secret.len());
    if secret == hash {
        for part in ["<html><h1>Auth Pass!</h1><p>hash ", &hash, "</p></html>"] {
            page.push_str(part);
        }
    } else {
        for part in ["<html><h1>Auth Forbidden!</h1><p>hash ", &hash, " secret ", secret, "</p></html>"] {
            page.push_str(part);
        }
    }
    let status = if secret == hash { "200" } else { "403" };
    let mut output = String::with_capacity(page.len() + 32);
    output.push_str("{\"status\":\"");
    output.push_str(status);
    output.push_str("\",\"body\":");
    push_json_string(&mut output, &page);
    output.push('}');
    Ok(output)
}
