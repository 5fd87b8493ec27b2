//! HTTP answers set by functions: a function's output read as a status,
//! headers and a body (`docs/functions.md`, "HTTP answers").
//!
//! - WASI functions print CGI-style headers, then a blank line, then the
//!   body, as WAGI does: `Status: 201 Created`, `Content-Type: ...`,
//!   `Location: ...` (a `Location` without `Status` is a 302).
//! - String-ABI functions return a JSON object
//!   `{"status": "403", "headers": {...}, "body": "..."}`.
//!
//! Pure functions only, bytes in and an [`HttpAnswer`] or an
//! [`AnswerError`] out; the routes decide when an output is read so (always
//! on the provider's invocation route when it looks like one, and on the
//! seed's invoke route when the request says `"http": true`) and how an
//! error is answered (502, in `ApiError::status`).

use std::fmt;

use serde_json::Value;

use crate::service::OutputKind;

/// Most headers one answer may set.
pub const MAX_ANSWER_HEADERS: usize = 64;

/// Headers a function may not set: hop-by-hop ones (RFC 9110 section 7.6.1),
/// framing the server computes (`Content-Length`, `Transfer-Encoding`),
/// `Host`, and the engine's own `X-Call-Id`. `Proxy-*` is refused as a prefix.
const REFUSED_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "host",
    "x-call-id",
];

/// The CGI fields that make an output a CGI answer when its first line is
/// one of them (RFC 3875 section 6.2: every CGI response has one).
const CGI_FIRST_FIELDS: &[&str] = &["status", "content-type", "location"];

/// A function's answer as it will be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAnswer {
    /// 100-599.
    pub status: u16,
    /// In the order the function gave them; names as given, checked to be
    /// tokens, values checked to hold no control characters.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// The `Content-Type` the function set, if it did.
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            .map(|(_, value)| value.as_str())
    }
}

/// Why an output is not a valid HTTP answer (answered 502).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnswerError(String);

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AnswerError {}

fn error(message: impl Into<String>) -> AnswerError {
    AnswerError(message.into())
}

/// Reads a function's output as its HTTP answer the way its ABI writes one
/// (CGI headers from stdout, a JSON object from a string result). When
/// `required` (the seed's `"http": true`) the output must be one; else
/// (the provider's route) only an output that looks like one is read, and
/// any other is `None`, as are numeric results always.
///
/// # Errors
/// An [`AnswerError`] when the output is read as an answer and is not valid.
pub fn read(
    kind: Option<OutputKind>,
    output: &str,
    required: bool,
) -> Result<Option<HttpAnswer>, AnswerError> {
    match kind {
        Some(OutputKind::Stdout) if required || looks_like_cgi(output.as_bytes()) => {
            parse_cgi(output.as_bytes()).map(Some)
        }
        Some(OutputKind::StringResult) if required || looks_like_json_answer(output) => {
            parse_json_answer(output).map(Some)
        }
        _ => Ok(None),
    }
}

/// Whether a WASI function's output starts as a CGI answer: its first line
/// is a `Status:`, `Content-Type:` or `Location:` header (any case). Only
/// such outputs are read as answers on the provider's invocation route;
/// any other output is sent as it is.
pub fn looks_like_cgi(output: &[u8]) -> bool {
    let first_line = output.split(|byte| *byte == b'\n').next().unwrap_or(output);
    let Some(colon) = first_line.iter().position(|byte| *byte == b':') else {
        return false;
    };
    let name = String::from_utf8_lossy(&first_line[..colon]);
    CGI_FIRST_FIELDS
        .iter()
        .any(|field| name.eq_ignore_ascii_case(field))
}

/// Reads a WASI function's output as a CGI answer: header lines (LF or
/// CRLF) up to the first empty line or the end of the output, then the
/// body, byte for byte. `Status: NNN [reason]` sets the status (the reason
/// phrase is not sent: the server sends the standard one); without it the
/// status is 302 when `Location` is set, else 200.
///
/// # Errors
/// An [`AnswerError`] saying which line is wrong and why.
pub fn parse_cgi(output: &[u8]) -> Result<HttpAnswer, AnswerError> {
    let mut status = None;
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut rest = output;
    let mut line_number = 0;
    loop {
        if rest.is_empty() {
            break;
        }
        let (line, after) = match rest.iter().position(|byte| *byte == b'\n') {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = after;
        line_number += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| error(format!("header line {line_number} is not UTF-8")))?;
        if line.starts_with([' ', '\t']) {
            return Err(error(format!(
                "header line {line_number} starts with white space (folded header lines are not accepted)"
            )));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(error(format!(
                "header line {line_number} ({:?}) has no ':'; end the headers with an empty line",
                preview(line)
            )));
        };
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("status") {
            if status.is_some() {
                return Err(error("Status is set twice"));
            }
            let code = value.split([' ', '\t']).next().unwrap_or("");
            status = Some(parse_status(code)?);
            continue;
        }
        check_header(name, value)?;
        push_header(&mut headers, name, value)?;
    }
    let has_location = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("location"));
    Ok(HttpAnswer {
        status: status.unwrap_or(if has_location { 302 } else { 200 }),
        headers,
        body: rest.to_vec(),
    })
}

/// Whether a string-ABI function's result is meant as an answer: a JSON
/// object with `status` and `body`, and nothing else but `headers`. Only
/// such results are read as answers on the provider's invocation route;
/// any other result is sent as it is.
pub fn looks_like_json_answer(output: &str) -> bool {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(output) else {
        return false;
    };
    object.contains_key("status")
        && object.contains_key("body")
        && object
            .keys()
            .all(|key| matches!(key.as_str(), "status" | "headers" | "body"))
}

/// Reads a string-ABI function's result as
/// `{"status": "403" or 403, "headers": {"Name": "value"}, "body": "..."}`;
/// each field may be left out (status 200, no headers, an empty body).
///
/// # Errors
/// An [`AnswerError`] naming the field that is wrong, or saying that the
/// result is not a JSON object.
pub fn parse_json_answer(output: &str) -> Result<HttpAnswer, AnswerError> {
    let value: Value = serde_json::from_str(output)
        .map_err(|reason| error(format!("the result is not JSON: {reason}")))?;
    let Value::Object(object) = value else {
        return Err(error(
            "the result is not a JSON object {\"status\", \"headers\", \"body\"}",
        ));
    };
    let mut answer = HttpAnswer {
        status: 200,
        headers: Vec::new(),
        body: Vec::new(),
    };
    for (key, value) in object {
        match (key.as_str(), value) {
            ("status", Value::String(code)) => answer.status = parse_status(code.trim())?,
            ("status", Value::Number(number)) => {
                answer.status = parse_status(&number.to_string())?;
            }
            ("headers", Value::Object(headers)) => {
                for (name, value) in headers {
                    let Value::String(value) = value else {
                        return Err(error(format!("header {name:?} is not a string")));
                    };
                    check_header(&name, &value)?;
                    push_header(&mut answer.headers, &name, &value)?;
                }
            }
            ("body", Value::String(body)) => answer.body = body.into_bytes(),
            ("status", _) => return Err(error("status is not a string or a number")),
            ("headers", _) => return Err(error("headers is not an object of strings")),
            ("body", _) => return Err(error("body is not a string")),
            (other, _) => {
                return Err(error(format!(
                    "unknown field {:?}; an answer has only status, headers and body",
                    preview(other)
                )));
            }
        }
    }
    Ok(answer)
}

fn parse_status(code: &str) -> Result<u16, AnswerError> {
    match code.parse::<u16>() {
        Ok(status) if (100..=599).contains(&status) && code.len() == 3 => Ok(status),
        _ => Err(error(format!(
            "status {:?} is not a number from 100 to 599",
            preview(code)
        ))),
    }
}

/// Checks a header's name (an RFC 9110 token, not a refused header) and
/// value (ASCII, no control character but tab, so no CR or LF).
fn check_header(name: &str, value: &str) -> Result<(), AnswerError> {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(is_token_char) {
        return Err(error(format!(
            "header name {:?} is not a valid HTTP header name",
            preview(name)
        )));
    }
    let lower = name.to_ascii_lowercase();
    if REFUSED_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
        return Err(error(format!(
            "header {name} may not be set by a function (hop-by-hop, framing or the engine's own)"
        )));
    }
    if let Some(bad) = value.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(error(format!(
            "header {name}'s value contains the control character {bad:?} (CR, LF and NUL are never accepted)"
        )));
    }
    if let Some(bad) = value.chars().find(|c| !c.is_ascii()) {
        return Err(error(format!(
            "header {name}'s value contains the non-ASCII character {bad:?}; encode it (RFC 8187 or percent-encoding)"
        )));
    }
    Ok(())
}

fn push_header(
    headers: &mut Vec<(String, String)>,
    name: &str,
    value: &str,
) -> Result<(), AnswerError> {
    if headers.len() == MAX_ANSWER_HEADERS {
        return Err(error(format!("more than {MAX_ANSWER_HEADERS} headers")));
    }
    if name.eq_ignore_ascii_case("content-type")
        && headers
            .iter()
            .any(|(existing, _)| existing.eq_ignore_ascii_case(name))
    {
        return Err(error("Content-Type is set twice"));
    }
    headers.push((name.to_owned(), value.to_owned()));
    Ok(())
}

/// At most 40 characters of `text`, for quoting outputs in messages.
fn preview(text: &str) -> String {
    let mut preview: String = text.chars().take(40).collect();
    if preview.len() < text.len() {
        preview.push_str("...");
    }
    preview
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    #[track_caller]
    fn cgi_error(output: &str, fragment: &str) {
        let error = parse_cgi(output.as_bytes()).unwrap_err();
        assert!(
            error.to_string().contains(fragment),
            "{output:?}: {error} should say {fragment}"
        );
    }

    #[track_caller]
    fn json_error(output: &str, fragment: &str) {
        let error = parse_json_answer(output).unwrap_err();
        assert!(
            error.to_string().contains(fragment),
            "{output:?}: {error} should say {fragment}"
        );
    }

    #[test]
    fn cgi_headers_set_the_status_and_headers_and_the_rest_is_the_body() {
        let answer = parse_cgi(
            b"Status: 201 Created\r\nContent-Type: application/json\r\nLocation: /things/7\r\n\r\n{\"id\": 7}\n",
        )
        .unwrap();
        assert_eq!(
            answer,
            HttpAnswer {
                status: 201,
                headers: vec![
                    header("Content-Type", "application/json"),
                    header("Location", "/things/7")
                ],
                body: b"{\"id\": 7}\n".to_vec(),
            }
        );
        assert_eq!(answer.content_type(), Some("application/json"));
        let plain = parse_cgi(b"content-type: text/html\n\n<p>hi</p>").unwrap();
        assert_eq!(plain.status, 200);
        assert_eq!(plain.body, b"<p>hi</p>");
        let redirect = parse_cgi(b"Location: https://example.com/").unwrap();
        assert_eq!(redirect.status, 302);
        assert!(redirect.body.is_empty());
        // The runtime removes one trailing newline: headers alone still parse.
        let no_content = parse_cgi(b"Status: 204").unwrap();
        assert_eq!((no_content.status, no_content.headers.len()), (204, 0));
    }

    #[test]
    fn only_outputs_that_start_with_a_cgi_field_look_like_cgi() {
        for output in [
            "Status: 404\n\n",
            "content-type: text/plain\n\nx",
            "LOCATION: /x",
        ] {
            assert!(looks_like_cgi(output.as_bytes()), "{output}");
        }
        for output in [
            "",
            "hello",
            "Result: 42",
            "X-Thing: 1\n\nbody",
            "{\"status\": 1}",
        ] {
            assert!(!looks_like_cgi(output.as_bytes()), "{output}");
        }
    }

    #[test]
    fn malformed_cgi_headers_say_what_is_wrong() {
        cgi_error("Status: 42\n\n", "100 to 599");
        cgi_error("Status: 600\n\n", "100 to 599");
        cgi_error("Status: 2000\n\n", "100 to 599");
        cgi_error("Status: abc\n\n", "100 to 599");
        cgi_error("Status: 200\nStatus: 201\n\n", "twice");
        cgi_error("Content-Type: a\ncontent-type: b\n\n", "twice");
        cgi_error("Content-Type: text/plain\nno colon here\n\nbody", "line 2");
        cgi_error("Content-Type: text/plain\n folded\n\n", "folded");
        cgi_error(
            "Content-Type: text/plain\nX-A: 1\rSet-Cookie: a=b\n\n",
            "control character",
        );
        cgi_error(
            "Content-Type: text/plain\nBad Name: 1\n\n",
            "not a valid HTTP header name",
        );
        cgi_error(
            "Content-Type: text/plain\nX-A: \u{0}\n\n",
            "control character",
        );
        let not_utf8 = parse_cgi(b"Content-Type: text/plain\nX-A: \xff\n\n").unwrap_err();
        assert!(not_utf8.to_string().contains("UTF-8"), "{not_utf8}");
        let many: String = (0..=MAX_ANSWER_HEADERS)
            .map(|index| format!("X-{index}: v\n"))
            .collect();
        cgi_error(&format!("Status: 200\n{many}\n"), "more than 64 headers");
    }

    #[test]
    fn hop_by_hop_framing_and_the_engines_own_headers_are_refused() {
        for name in [
            "Connection",
            "keep-alive",
            "Transfer-Encoding",
            "TE",
            "Trailer",
            "Upgrade",
            "Proxy-Authenticate",
            "proxy-connection",
            "Content-Length",
            "Host",
            "X-Call-Id",
        ] {
            cgi_error(&format!("Status: 200\n{name}: x\n\n"), "may not be set");
            json_error(
                &format!(r#"{{"status": "200", "headers": {{"{name}": "x"}}, "body": ""}}"#),
                "may not be set",
            );
        }
        assert!(parse_cgi(b"Status: 200\nSet-Cookie: a=b\nCache-Control: no-store\n\n").is_ok());
    }

    #[test]
    fn a_json_result_sets_the_status_headers_and_body() {
        let answer = parse_json_answer(
            r#"{"status": "403", "headers": {"Content-Type": "text/html", "X-Reason": "bad hash"}, "body": "<p>no</p>"}"#,
        )
        .unwrap();
        assert_eq!(
            answer,
            HttpAnswer {
                status: 403,
                headers: vec![
                    header("Content-Type", "text/html"),
                    header("X-Reason", "bad hash")
                ],
                body: b"<p>no</p>".to_vec(),
            }
        );
        assert_eq!(parse_json_answer(r#"{"status": 201}"#).unwrap().status, 201);
        assert_eq!(parse_json_answer("{}").unwrap().status, 200);
    }

    #[test]
    fn malformed_json_answers_say_what_is_wrong() {
        json_error("not json", "not JSON");
        json_error("[1, 2]", "not a JSON object");
        json_error(r#"{"status": "99", "body": ""}"#, "100 to 599");
        json_error(r#"{"status": 200.5, "body": ""}"#, "100 to 599");
        json_error(r#"{"status": true, "body": ""}"#, "status is not");
        json_error(r#"{"status": "200", "body": 5}"#, "body is not");
        json_error(r#"{"status": "200", "headers": []}"#, "headers is not");
        json_error(
            r#"{"status": "200", "headers": {"X": 1}}"#,
            "is not a string",
        );
        json_error(
            r#"{"status": "200", "headers": {"X-A": "a\r\nSet-Cookie: b"}}"#,
            "control character",
        );
        json_error(r#"{"status": "200", "extra": 1}"#, "unknown field");
    }

    #[test]
    fn only_objects_with_status_and_body_look_like_json_answers() {
        assert!(looks_like_json_answer(
            r#"{"status":"403","body":"<html>"}"#
        ));
        assert!(looks_like_json_answer(
            r#"{"status":200,"headers":{},"body":""}"#
        ));
        for output in [
            r#"{"status":"ok"}"#,
            r#"{"status":"ok","body":"x","data":1}"#,
            r#"{"body":"x"}"#,
            "[]",
            "42",
            "hello",
        ] {
            assert!(!looks_like_json_answer(output), "{output}");
        }
    }
}
