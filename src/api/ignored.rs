//! Fields a seed route ignored, made visible without changing the
//! reference's text answers: a WARN log line per field with a did-you-mean
//! against the route's known fields, and the `X-Ignored-Fields` header.
//! (JSON answers also list them under `ignored_fields`; `seed` adds that.)
//!
//! The known fields are listed here by route; a test checks that each one
//! is read, not ignored, by its route's parser.

use super::observe::Call;
use super::route::Route;

/// The answer header that names the ignored fields, comma-separated.
pub const IGNORED_FIELDS_HEADER: &str = "X-Ignored-Fields";

/// At most this many ignored fields are logged and named in the header, so
/// a body of a thousand unknown fields costs a few lines, not a thousand.
const MAX_NAMED: usize = 8;

/// The top-level fields `route`'s body takes.
pub fn known_fields(route: Route) -> &'static [&'static str] {
    match route {
        Route::Deploy | Route::Update => &[
            "function_name",
            "function_image",
            "wasi_cap",
            "timeout_ms",
            "memory_limit_mb",
            "fuel",
            "secrets",
            "calls",
            "env",
        ],
        Route::Delete | Route::Query => &["function_name"],
        Route::Invoke => &["function_name", "args", "http"],
        Route::Logs => &["function_name", "tail", "since"],
        // `namespace` is the provider's: the seed ignores it.
        Route::Secret => &["name", "value", "rawValue", "delete"],
        Route::List | Route::Metrics | Route::Healthz | Route::Readyz => &[],
    }
}

/// The known field `field` was most likely meant to be: one a letter or
/// two away (`fucntion_name`), or that starts with it or it with that
/// (`timeout` for `timeout_ms`).
pub fn did_you_mean(field: &str, known: &[&'static str]) -> Option<&'static str> {
    let lower = field.to_ascii_lowercase();
    known
        .iter()
        .map(|candidate| (edit_distance(&lower, candidate), *candidate))
        .filter(|(distance, candidate)| {
            *distance <= 2
                || (lower.len() >= 3
                    && (candidate.starts_with(lower.as_str()) || lower.starts_with(candidate)))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Logs one WARN line per ignored field (at most [`MAX_NAMED`]):
/// `ignored field "timeout" in deploy of hello; did you mean "timeout_ms"?`.
pub fn warn(route: Route, call: &Call, fields: &[String]) {
    let what = call.path.rsplit('/').next().unwrap_or(&call.path);
    let of = call
        .function
        .as_ref()
        .map(|name| format!(" of {name}"))
        .unwrap_or_default();
    let known = known_fields(route);
    for field in fields.iter().take(MAX_NAMED) {
        let hint = did_you_mean(field, known)
            .map(|meant| format!("; did you mean {meant:?}?"))
            .unwrap_or_else(|| format!("; {what} takes {}", known.join(", ")));
        // `{:?}` quotes the name and escapes control characters.
        log::warn!("ignored field {field:?} in {what}{of}{hint}");
    }
    if fields.len() > MAX_NAMED {
        log::warn!(
            "{} more ignored fields in {what}{of}",
            fields.len() - MAX_NAMED
        );
    }
}

/// The `X-Ignored-Fields` value: the names, comma-separated, any character
/// that a header value cannot hold (or a comma) as `?`, at most
/// [`MAX_NAMED`] names then `...`.
pub fn header_value<'a>(fields: impl ExactSizeIterator<Item = &'a str>) -> String {
    let count = fields.len();
    let mut names: Vec<String> = fields
        .take(MAX_NAMED)
        .map(|name| {
            name.chars()
                .take(64)
                .map(|c| {
                    if c.is_ascii_graphic() && c != ',' {
                        c
                    } else {
                        '?'
                    }
                })
                .collect()
        })
        .collect();
    if count > MAX_NAMED {
        names.push("...".into());
    }
    names.join(", ")
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::request::{DeployRequest, JsonBody, NameRequest, SecretRequest};

    #[test]
    fn a_misspelt_field_gets_a_suggestion() {
        let deploy = known_fields(Route::Deploy);
        for (field, meant) in [
            ("timeout", Some("timeout_ms")),
            ("fucntion_image", Some("function_image")),
            ("Wasi_Cap", Some("wasi_cap")),
            ("memory_limit", Some("memory_limit_mb")),
            ("description", None),
            ("x", None),
        ] {
            assert_eq!(did_you_mean(field, deploy), meant, "{field}");
        }
    }

    #[test]
    fn the_header_names_fields_safely_and_boundedly() {
        let names = ["timeout", "a,b", "é\r\n"];
        assert_eq!(header_value(names.into_iter()), "timeout, a?b, ???");
        let many: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
        let value = header_value(many.iter().map(String::as_str));
        assert!(value.ends_with("f7, ..."), "{value}");
    }

    /// Every field listed as known is read by its route's parser: with it
    /// set to `null`, the body either fails (the field has another type)
    /// or parses with nothing ignored.
    #[test]
    fn the_known_fields_are_the_parsers_fields() {
        fn check(route: Route, base: &str, parse: impl Fn(&[u8]) -> Result<Vec<String>, String>) {
            assert_eq!(parse(base.as_bytes()), Ok(vec![]), "{route:?}: {base}");
            for field in known_fields(route) {
                let body = format!("{}, {field:?}: null}}", base.trim_end_matches('}'));
                if let Ok(ignored) = parse(body.as_bytes()) {
                    assert!(
                        !ignored.contains(&(*field).to_owned()),
                        "{route:?}: {field}"
                    );
                }
            }
        }
        let deploy = |body: &[u8]| {
            DeployRequest::parse(body)
                .map(|request| request.ignored_fields.0)
                .map_err(|error| error.to_string())
        };
        check(
            Route::Deploy,
            r#"{"function_name": "f", "function_image": "r.io/f:1"}"#,
            deploy,
        );
        check(
            Route::Update,
            r#"{"function_name": "f", "function_image": "r.io/f:1"}"#,
            deploy,
        );
        let name = |body: &[u8]| {
            <NameRequest as JsonBody>::parse(body)
                .map(|request| request.ignored_fields.0)
                .map_err(|error| error.to_string())
        };
        check(Route::Query, r#"{"function_name": "f"}"#, name);
        check(Route::Delete, r#"{"function_name": "f"}"#, name);
        check(Route::Invoke, r#"{"function_name": "f"}"#, |body| {
            <crate::api::request::InvokeRequest as JsonBody>::parse(body)
                .map(|request| request.ignored_fields.0)
                .map_err(|error| error.to_string())
        });
        check(Route::Logs, r#"{"function_name": "f"}"#, |body| {
            <crate::api::observe::LogsRequest as JsonBody>::parse(body)
                .map(|request| request.ignored_fields.0)
                .map_err(|error| error.to_string())
        });
        check(Route::Secret, r#"{"name": "s", "delete": true}"#, |body| {
            SecretRequest::parse(body)
                .map(|(_, ignored)| ignored.0)
                .map_err(|error| error.to_string())
        });
    }
}
