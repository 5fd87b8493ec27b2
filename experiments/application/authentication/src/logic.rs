//! The authentication check, shared by the string-ABI and WASI builds.

use fn_support::{Args, get, json_string};

/// `hash` = lowercase hex MD5 of `"<arg_uri>#<arg_body>#argfunc"`; the answer
/// is a 200 page when `arg_secret` equals it, else a 403 page.
///
/// # Errors
/// A message naming the first missing argument.
pub fn authenticate(args: &Args) -> Result<String, String> {
    let uri = get(args, "arg_uri")?;
    let body = get(args, "arg_body")?;
    let secret = get(args, "arg_secret")?;
    let hash = format!("{:x}", md5::compute(format!("{uri}#{body}#argfunc")));
    let (status, page) = if secret == hash {
        ("200", format!("<html><h1>Auth Pass!</h1><p>hash {hash}</p></html>"))
    } else {
        (
            "403",
            format!("<html><h1>Auth Forbidden!</h1><p>hash {hash} secret {secret}</p></html>"),
        )
    };
    Ok(format!(
        "{{\"status\":{},\"body\":{}}}",
        json_string(status),
        json_string(&page)
    ))
}
