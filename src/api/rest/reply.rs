//! The REST API's reply rendering: [`Reply`], a status, a message and
//! structured fields, rendered as the text format existing scripts parse
//! (`status code: <code>, message: <message>`) or, when the client prefers
//! JSON (see `accept`), as a JSON object, into the [`Response`] that is
//! sent ([`Reply::into_response`]; [`failure`] for an error); the list's
//! rendering kept between changes ([`render_list`]). How the API shows a
//! deployed function is `function_answer`'s.
//!
//! As the reference engine does, a text answer ends with one `\n`, except a
//! successful invocation's: that is the function's output verbatim, bytes
//! and all (`application/octet-stream` when they are not UTF-8). The JSON
//! form carries UTF-8 output as the string `output`, and any other output
//! as `output_base64` (`http::base64`).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::api::http::auth::Scheme;
use crate::api::http::base64::encode_base64;
use crate::api::http::error::ApiError;
use crate::api::http::send::{Body, Response, TEXT};
use crate::api::shared::RenderedList;
use crate::call::CallId;
use crate::function::FunctionEntry;
use crate::runtime::CallLimits;
use crate::service::ServiceError;

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
    /// A successful invocation's output that is not UTF-8: the text form
    /// sends it after `message: ` instead of the message.
    pub bytes: Option<Vec<u8>>,
}

impl Reply {
    pub fn ok(message: String) -> Self {
        Self {
            status: 200,
            message,
            fields: Map::new(),
            newline: true,
            allow: None,
            bytes: None,
        }
    }

    /// A successful invocation: the text form is the output verbatim, with
    /// no newline added (a newline the function printed last was already
    /// dropped by the WASI ABI, as the reference engine does). The JSON form
    /// has it as `output` when it is UTF-8, else as `output_base64` (and a
    /// `message` that says so).
    pub fn output(output: Vec<u8>) -> Self {
        match String::from_utf8(output) {
            Ok(text) => Self {
                newline: false,
                ..Self::ok(text.clone())
            }
            .with("output", json!(text)),
            Err(not_text) => {
                let bytes = not_text.into_bytes();
                Self {
                    newline: false,
                    ..Self::ok(format!(
                        "the output is {} bytes that are not UTF-8 text: see output_base64",
                        bytes.len()
                    ))
                }
                .with("output_base64", json!(encode_base64(&bytes)))
                .with_bytes(bytes)
            }
        }
    }

    fn with_bytes(mut self, bytes: Vec<u8>) -> Self {
        self.bytes = Some(bytes);
        self
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.fields.insert(key.to_owned(), value);
        self
    }

    /// The REST API's answer to `error`: its message, and what to do next
    /// in this API's routes when there is something to say.
    pub fn error(error: &ApiError) -> Self {
        let hint = match error {
            ApiError::Service(ServiceError::NotDeployed { .. }) => {
                "; deploy it with POST /function/deploy, or see GET /function/list"
            }
            _ => "",
        };
        Self {
            status: error.status(),
            message: format!("{error}{hint}"),
            fields: Map::new(),
            newline: true,
            allow: match error {
                ApiError::MethodNotAllowed { allowed, .. } => Some(allowed.clone()),
                _ => None,
            },
            bytes: None,
        }
    }

    /// The body and its content type.
    pub fn render(&self, json: bool) -> (Vec<u8>, &'static str) {
        if json {
            let mut object = Map::new();
            object.insert("status".into(), json!(self.status));
            object.insert("message".into(), json!(self.message));
            object.extend(self.fields.clone());
            (
                Value::Object(object).to_string().into_bytes(),
                "application/json",
            )
        } else if let Some(bytes) = &self.bytes {
            // The reference's text answer, with the function's bytes as they
            // are; not text, so not labelled as text.
            let mut body = format!("status code: {}, message: ", self.status).into_bytes();
            body.extend_from_slice(bytes);
            (body, crate::api::http::http_answer::OCTET_STREAM)
        } else if self.newline {
            // Exactly one: a message never supplies its own.
            (
                format!(
                    "status code: {}, message: {}\n",
                    self.status,
                    self.message.trim_end_matches('\n')
                )
                .into_bytes(),
                TEXT,
            )
        } else {
            (
                format!("status code: {}, message: {}", self.status, self.message).into_bytes(),
                TEXT,
            )
        }
    }
}

impl Reply {
    /// The reply as it is sent (JSON when the client prefers it), with
    /// what its status calls for. An error's message names the call id.
    pub fn into_response(mut self, wants_json: bool, call_id: &CallId) -> Response {
        if self.status >= 400 {
            self.message.push_str(&format!(" (call id {call_id})"));
            self = self.with("call_id", json!(call_id.as_str()));
        }
        let (body, content_type) = self.render(wants_json);
        Response {
            allow: self.allow,
            challenge: (self.status == 401).then(|| Scheme::Bearer.challenge()),
            ..Response::new(self.status, content_type, body)
        }
    }
}

/// How the REST API answers `error`.
pub fn failure(error: &ApiError, wants_json: bool, call_id: &CallId) -> Response {
    Reply::error(error).into_response(wants_json, call_id)
}

/// The list's answer rendered both ways, for [`Shared::list_cache`](crate::api::shared::Shared).
pub fn render_list(generation: u64, entries: &[FunctionEntry]) -> RenderedList {
    let items: Vec<String> = entries.iter().map(list_item).collect();
    let reply = Reply::ok(format!(
        "all deployed function info: [{}]",
        items.join(", ")
    ))
    .with("functions", json!(entries));
    let text = reply.render(false).0;
    let json = reply.render(true).0;
    RenderedList {
        generation,
        text: Arc::from(text),
        json: Arc::from(json),
    }
}

/// The list's answer (as [`Reply::render`] gives it), without copying it.
pub fn list_response(rendered: &RenderedList, json: bool) -> Response {
    let (body, content_type) = if json {
        (rendered.json.clone(), "application/json")
    } else {
        (rendered.text.clone(), TEXT)
    };
    Response {
        body: Body::Shared(body),
        ..Response::new(200, content_type, Vec::new())
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
        let text = |reply: Reply| String::from_utf8(reply.render(false).0).unwrap();
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
        assert!(body.ends_with(b"}"), "{body:?}");
        let (body, _) = Reply::output("out\n".into()).render(true);
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            json!({"status": 200, "message": "out\n", "output": "out\n"})
        );
    }

    #[test]
    fn json_form_carries_status_message_and_fields() {
        let (body, content_type) = Reply::ok("hi".into())
            .with("output", json!("21"))
            .render(true);
        assert_eq!(content_type, "application/json");
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            json!({"status": 200, "message": "hi", "output": "21"})
        );
    }

    #[test]
    fn output_that_is_not_utf8_is_sent_as_bytes_and_as_base64_in_json() {
        let png = b"\x89PNG\r\n\x1a\n\x00\xff".to_vec();
        let (body, content_type) = Reply::output(png.clone()).render(false);
        let mut expected = b"status code: 200, message: ".to_vec();
        expected.extend_from_slice(&png);
        assert_eq!((body, content_type), (expected, "application/octet-stream"));
        let (body, content_type) = Reply::output(png).render(true);
        assert_eq!(content_type, "application/json");
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["output_base64"], "iVBORw0KGgoA/w==");
        assert!(value.get("output").is_none(), "{value}");
        assert_eq!(
            value["message"],
            "the output is 10 bytes that are not UTF-8 text: see output_base64"
        );
        // UTF-8 output keeps today's fields and type.
        let (_, content_type) = Reply::output("h\u{e9}".into()).render(false);
        assert_eq!(content_type, "text/plain; charset=utf-8");
    }
}
