//! [`Reply`]: what a route answers, rendered as the text format existing
//! scripts parse (`status code: <code>, message: <message>`) or, when the
//! client prefers JSON (see `accept`), as a JSON object.
//!
//! As the reference engine does, a text answer ends with one `\n`, except a
//! successful invocation's: that is the function's output verbatim.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::error::ApiError;
use crate::function::FunctionEntry;
use crate::runtime::CallLimits;

/// A status, a message, and structured fields for the JSON form.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub message: String,
    pub fields: Map<String, Value>,
    /// Whether the text form ends with `\n` (all but a successful invoke).
    pub newline: bool,
    /// The `Allow` header of a 405: the methods the path takes.
    pub allow: Option<String>,
}

impl Reply {
    pub fn ok(message: String) -> Self {
        Self {
            status: 200,
            message,
            fields: Map::new(),
            newline: true,
            allow: None,
        }
    }

    /// A successful invocation: the text form is the output verbatim, with
    /// no newline added (a newline the function printed last was already
    /// dropped by the WASI ABI, as the reference engine does).
    pub fn output(output: String) -> Self {
        Self {
            newline: false,
            ..Self::ok(output.clone())
        }
        .with("output", json!(output))
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.fields.insert(key.to_owned(), value);
        self
    }

    pub fn error(error: &ApiError) -> Self {
        Self {
            status: error.status(),
            message: error.to_string(),
            fields: Map::new(),
            newline: true,
            allow: match error {
                ApiError::MethodNotAllowed { allowed, .. } => Some(allowed.clone()),
                _ => None,
            },
        }
    }

    /// The body and its content type.
    pub fn render(&self, json: bool) -> (String, &'static str) {
        if json {
            let mut object = Map::new();
            object.insert("status".into(), json!(self.status));
            object.insert("message".into(), json!(self.message));
            object.extend(self.fields.clone());
            (Value::Object(object).to_string(), "application/json")
        } else if self.newline {
            // Exactly one: a message never supplies its own.
            (
                format!(
                    "status code: {}, message: {}\n",
                    self.status,
                    self.message.trim_end_matches('\n')
                ),
                "text/plain; charset=utf-8",
            )
        } else {
            (
                format!("status code: {}, message: {}", self.status, self.message),
                "text/plain; charset=utf-8",
            )
        }
    }
}

/// The list's answer rendered both ways, once per generation of the
/// deployed functions (`FunctionService::list_generation`): with 1,000
/// functions, rendering is most of what a list costs, and the list changes
/// only on a deploy, update or delete.
#[derive(Debug)]
pub struct RenderedList {
    pub generation: u64,
    pub text: Arc<[u8]>,
    pub json: Arc<[u8]>,
}

impl RenderedList {
    pub fn new(generation: u64, entries: &[FunctionEntry]) -> Self {
        let items: Vec<String> = entries.iter().map(list_item).collect();
        let reply = Reply::ok(format!(
            "all deployed function info: [{}]",
            items.join(", ")
        ))
        .with("functions", json!(entries));
        let text = reply.render(false).0;
        let json = reply.render(true).0;
        Self {
            generation,
            text: Arc::from(text.into_bytes()),
            json: Arc::from(json.into_bytes()),
        }
    }

    /// The body and its content type (as [`Reply::render`] gives them).
    pub fn body(&self, json: bool) -> (Arc<[u8]>, &'static str) {
        if json {
            (self.json.clone(), "application/json")
        } else {
            (self.text.clone(), "text/plain; charset=utf-8")
        }
    }
}

/// `{func_name: a, func_image_name: b, wasi_cap: false}`, as list prints each entry.
pub fn list_item(entry: &FunctionEntry) -> String {
    format!(
        "{{func_name: {}, func_image_name: {}, wasi_cap: {}}}",
        entry.func_name, entry.func_image_name, entry.wasi_cap
    )
}

/// `FunctionEntry { func_name: "a", ... }`, as query prints an entry.
pub fn query_item(entry: &FunctionEntry) -> String {
    format!(
        "FunctionEntry {{ func_name: {:?}, func_image_name: {:?}, func_local_path: {:?}, wasi_cap: {} }}",
        entry.func_name.as_str(),
        entry.func_image_name.to_string(),
        entry.func_local_path,
        entry.wasi_cap
    )
}

/// The limits a function's calls run under, as query shows them.
pub fn limits_json(limits: &CallLimits) -> Value {
    json!({
        "timeout_ms": u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
        "memory_limit_mb": limits.memory_limit_bytes >> 20,
        "fuel": limits.fuel,
        "max_output_bytes": limits.max_output_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::FunctionName;

    fn entry() -> FunctionEntry {
        FunctionEntry {
            func_name: FunctionName::new("authentication").unwrap(),
            func_image_name: crate::registry::ImageReference::parse(
                "127.0.0.1:5000/authentication-wasm:v4",
            )
            .unwrap(),
            func_local_path: "/var/lib/wasmengine/functions/authentication/authentication.wasm"
                .into(),
            wasi_cap: false,
            image_digest: Some(crate::registry::Digest::of(b"")),
            limits: Default::default(),
            adopted_from_reference: None,
            managed_by: None,
            metadata: Default::default(),
        }
    }

    #[test]
    fn text_formats_match_what_existing_scripts_parse() {
        assert_eq!(
            list_item(&entry()),
            "{func_name: authentication, func_image_name: 127.0.0.1:5000/authentication-wasm:v4, wasi_cap: false}"
        );
        assert_eq!(
            query_item(&entry()),
            r#"FunctionEntry { func_name: "authentication", func_image_name: "127.0.0.1:5000/authentication-wasm:v4", func_local_path: "/var/lib/wasmengine/functions/authentication/authentication.wasm", wasi_cap: false }"#
        );
    }

    #[test]
    fn text_answers_end_with_one_newline_but_invoke_output_is_verbatim() {
        let text = |reply: Reply| reply.render(false).0;
        assert_eq!(
            text(Reply::ok("delete function hello successfully!".into())),
            "status code: 200, message: delete function hello successfully!\n"
        );
        assert_eq!(
            text(Reply::error(&ApiError::Internal)),
            format!("status code: 500, message: {}\n", ApiError::Internal)
        );
        assert_eq!(
            text(Reply::ok("ends with its own\n\n".into())),
            "status code: 200, message: ends with its own\n"
        );
        for output in ["21", "", "two lines\nand a newline\n", " spaced "] {
            assert_eq!(
                text(Reply::output(output.into())),
                format!("status code: 200, message: {output}")
            );
        }
    }

    #[test]
    fn json_answers_carry_no_added_newline() {
        let (body, _) = Reply::ok("delete function hello successfully!".into()).render(true);
        assert!(body.ends_with('}'), "{body:?}");
        let (body, _) = Reply::output("out\n".into()).render(true);
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({"status": 200, "message": "out\n", "output": "out\n"})
        );
    }

    #[test]
    fn json_form_carries_status_message_and_fields() {
        let (body, content_type) = Reply::ok("hi".into())
            .with("output", json!("21"))
            .render(true);
        assert_eq!(content_type, "application/json");
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            value,
            json!({"status": 200, "message": "hi", "output": "21"})
        );
    }
}
