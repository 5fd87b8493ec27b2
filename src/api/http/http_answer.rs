//! HTTP answers set by functions: a function's output read as a status,
//! headers and a body (`docs/functions.md`, "HTTP answers").
//!
//! - WASI functions print CGI-style headers, then a blank line, then the
//!   body, as WAGI does: `Status: 201 Created`, `Content-Type: ...`,
//!   `Location: ...` (a `Location` without `Status` is a 302).
//! - String-ABI functions return a JSON object
//!   `{"status": "403", "headers": {...}, "body": "..."}`, whose body may
//!   instead be bytes given as base64 in `body_base64`.
//!
//! Pure functions only, bytes in and an [`HttpAnswer`] or an
//! [`AnswerError`] out; the routes decide when an output is read so (on the
//! provider's invocation route when it looks like one and the function's
//! `HttpAnswerMode` allows, and on the REST API's invoke route when the request
//! says `"http": true`) and how an error is answered (502, in
//! `ApiError::status`). An [`AnswerError`] never quotes the function's
//! output: it is logged, and function output never is.

use std::fmt;

use serde_json::Value;

use crate::service::OutputKind;

/// Most headers one answer may set.
pub const MAX_ANSWER_HEADERS: usize = 64;

/// Headers a function may not set: hop-by-hop ones (RFC 9110 section 7.6.1),
/// framing the server computes (`Content-Length`, `Transfer-Encoding`),
/// `Host`, and the engine's own `X-Call-Id`. `Proxy-*` is refused as a prefix.
const REFUSED_HEADERS: &[&str] = &[
    "Connection",
    "Keep-Alive",
    "Transfer-Encoding",
    "TE",
    "Trailer",
    "Upgrade",
    "Content-Length",
    "Host",
    "X-Call-Id",
];

/// The CGI fields that make an output a CGI answer when its first line is
/// one of them (RFC 3875 section 6.2: every CGI response has one).
const CGI_FIRST_FIELDS: &[&str] = &["status", "content-type", "location"];

/// What a function said its HTTP answer is (status, headers, body), read
/// from its output; sent as a `send::Response` (`Response::from_function`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAnswer {
    /// 200-599 (1xx are the server's own); 204 and 304 with an empty body.
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
/// `required` (the REST API's `"http": true`) the output must be one; else
/// (the provider's route) only an output that looks like one is read, and
/// any other is `None`, as are numeric results always. With
/// `unless_echoing: Some(input)`, an output whose head (its CGI header
/// lines, or the whole JSON object) is where `input` starts is `None`
/// too: the function echoed its caller, who must not choose the answer's
/// status and headers (`HttpAnswerMode::Auto`).
///
/// # Errors
/// An [`AnswerError`] when the output is read as an answer and is not valid.
pub fn read(
    kind: Option<OutputKind>,
    output: &[u8],
    required: bool,
    unless_echoing: Option<&[u8]>,
) -> Result<Option<HttpAnswer>, AnswerError> {
    let echoed = |head: &[u8]| unless_echoing.is_some_and(|input| input.starts_with(head));
    match kind {
        Some(OutputKind::Stdout)
            if required || (looks_like_cgi(output) && !echoed(cgi_head(output))) =>
        {
            parse_cgi(output).map(Some)
        }
        Some(OutputKind::StringResult)
            if required || (looks_like_json_answer(output) && !echoed(output)) =>
        {
            parse_json_answer(output).map(Some)
        }
        _ => Ok(None),
    }
}

/// The `Content-Type` of an answer whose function set none: the one its
/// deploy configured, else `for_text` when `body` is UTF-8, else
/// `application/octet-stream` (never a text type on bytes that are not).
pub fn default_content_type(configured: Option<&str>, body: &[u8], for_text: &str) -> String {
    match configured {
        Some(content_type) => content_type.to_owned(),
        None if std::str::from_utf8(body).is_ok() => for_text.to_owned(),
        None => OCTET_STREAM.to_owned(),
    }
}

/// The content type of bytes that are not text and say nothing of themselves.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// A CGI output's head: its header lines up to and with the empty line
/// that ends them, or the whole output when none does.
fn cgi_head(output: &[u8]) -> &[u8] {
    let mut start = 0;
    while let Some(end) = output[start..].iter().position(|byte| *byte == b'\n') {
        let line = &output[start..start + end];
        if line.is_empty() || line == b"\r" {
            return &output[..start + end + 1];
        }
        start += end + 1;
    }
    output
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
                "header line {line_number} has no ':'; end the headers with an empty line"
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
        let place = format!("header line {line_number}");
        check_header(&place, name, value)?;
        push_header(&mut headers, name, value)?;
    }
    let has_location = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("location"));
    checked(HttpAnswer {
        status: status.unwrap_or(if has_location { 302 } else { 200 }),
        headers,
        body: rest.to_vec(),
    })
}

/// `answer`, unless its status forbids a body (204, 304) and it has one.
fn checked(answer: HttpAnswer) -> Result<HttpAnswer, AnswerError> {
    if matches!(answer.status, 204 | 304) && !answer.body.is_empty() {
        return Err(error(format!(
            "status {} has no body, but the answer has {} byte(s) after its headers",
            answer.status,
            answer.body.len()
        )));
    }
    Ok(answer)
}

/// Whether a string-ABI function's result is meant as an answer: a JSON
/// object with `status` and `body` (or `body_base64`), and nothing else but
/// `headers`. Only such results are read as answers on the provider's
/// invocation route; any other result is sent as it is.
pub fn looks_like_json_answer(output: &[u8]) -> bool {
    if output.first() != Some(&b'{') {
        return false;
    }
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(output) else {
        return false;
    };
    object.contains_key("status")
        && (object.contains_key("body") || object.contains_key("body_base64"))
        && object
            .keys()
            .all(|key| matches!(key.as_str(), "status" | "headers" | "body" | "body_base64"))
}

/// Reads a string-ABI function's result as
/// `{"status": "403" or 403, "headers": {"Name": "value"}, "body": "..."}`;
/// each field may be left out (status 200, no headers, an empty body). A
/// body of bytes that are not text is given as standard base64 (padded) in
/// `body_base64` instead of `body`.
///
/// # Errors
/// An [`AnswerError`] naming the field that is wrong, or saying that the
/// result is not a JSON object.
pub fn parse_json_answer(output: &[u8]) -> Result<HttpAnswer, AnswerError> {
    let value: Value = serde_json::from_slice(output)
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
    if object.contains_key("body") && object.contains_key("body_base64") {
        return Err(error("give body or body_base64, not both"));
    }
    for (key, value) in object {
        match (key.as_str(), value) {
            ("status", Value::String(code)) => answer.status = parse_status(code.trim())?,
            ("status", Value::Number(number)) => {
                answer.status = parse_status(&number.to_string())?;
            }
            ("headers", Value::Object(headers)) => {
                for (index, (name, value)) in headers.into_iter().enumerate() {
                    let place = format!("headers entry {}", index + 1);
                    let Value::String(value) = value else {
                        return Err(error(format!("{place}'s value is not a string")));
                    };
                    check_header(&place, &name, &value)?;
                    push_header(&mut answer.headers, &name, &value)?;
                }
            }
            ("body", Value::String(body)) => answer.body = body.into_bytes(),
            ("body_base64", Value::String(encoded)) => {
                answer.body = super::base64::decode_base64(encoded.trim()).ok_or_else(|| {
                    error("body_base64 is not standard base64 (A-Z a-z 0-9 + /, padded with =)")
                })?;
            }
            ("body_base64", _) => return Err(error("body_base64 is not a string")),
            ("status", _) => return Err(error("status is not a string or a number")),
            ("headers", _) => return Err(error("headers is not an object of strings")),
            ("body", _) => return Err(error("body is not a string")),
            (_, _) => {
                return Err(error(
                    "an unknown field; an answer has only status, headers and body (or body_base64)",
                ));
            }
        }
    }
    checked(answer)
}

/// A status a function may answer: 200 to 599. The 1xx statuses are
/// interim answers of the server's own (a client waits for the final one
/// after them, forever).
fn parse_status(code: &str) -> Result<u16, AnswerError> {
    match code.parse::<u16>() {
        Ok(status) if (200..=599).contains(&status) && code.len() == 3 => Ok(status),
        _ => Err(error(
            "the status is not a number from 200 to 599 (1xx are the server's own)",
        )),
    }
}

/// Checks a header's name (an RFC 9110 token, not a refused header) and
/// value (ASCII, no control character but tab, so no CR or LF); `place`
/// says which header it is (messages name only the refused headers, whose
/// names are the engine's list, never other output).
fn check_header(place: &str, name: &str, value: &str) -> Result<(), AnswerError> {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(is_token_char) {
        return Err(error(format!(
            "{place}'s name is not a valid HTTP header name"
        )));
    }
    if let Some(refused) = REFUSED_HEADERS
        .iter()
        .find(|refused| refused.eq_ignore_ascii_case(name))
    {
        return Err(error(format!(
            "header {refused} may not be set by a function (hop-by-hop, framing or the engine's own)"
        )));
    }
    if name.len() >= 6 && name[..6].eq_ignore_ascii_case("proxy-") {
        return Err(error(
            "Proxy-* headers may not be set by a function (hop-by-hop)",
        ));
    }
    if let Some(bad) = value.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(error(format!(
            "{place}'s value contains the control character {bad:?} (CR, LF and NUL are never accepted)"
        )));
    }
    if !value.is_ascii() {
        return Err(error(format!(
            "{place}'s value contains a non-ASCII character; encode it (RFC 8187 or percent-encoding)"
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
        let error = parse_json_answer(output.as_bytes()).unwrap_err();
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
        cgi_error("Status: 42\n\n", "200 to 599");
        cgi_error("Status: 600\n\n", "200 to 599");
        cgi_error("Status: 2000\n\n", "200 to 599");
        cgi_error("Status: abc\n\n", "200 to 599");
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
            br#"{"status": "403", "headers": {"Content-Type": "text/html", "X-Reason": "bad hash"}, "body": "<p>no</p>"}"#,
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
        assert_eq!(
            parse_json_answer(br#"{"status": 201}"#).unwrap().status,
            201
        );
        assert_eq!(parse_json_answer(b"{}").unwrap().status, 200);
    }

    #[test]
    fn malformed_json_answers_say_what_is_wrong() {
        json_error("not json", "not JSON");
        json_error("[1, 2]", "not a JSON object");
        json_error(r#"{"status": "99", "body": ""}"#, "200 to 599");
        json_error(r#"{"status": 200.5, "body": ""}"#, "200 to 599");
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
            br#"{"status":"403","body":"<html>"}"#
        ));
        assert!(looks_like_json_answer(
            br#"{"status":200,"headers":{},"body":""}"#
        ));
        assert!(looks_like_json_answer(
            br#"{"status":200,"body_base64":"iVBORw=="}"#
        ));
        for output in [
            r#"{"status":"ok"}"#,
            r#"{"status":"ok","body":"x","data":1}"#,
            r#"{"body":"x"}"#,
            "[]",
            "42",
            "hello",
        ] {
            assert!(!looks_like_json_answer(output.as_bytes()), "{output}");
        }
    }

    #[test]
    fn no_function_may_answer_an_interim_1xx_status() {
        for status in ["100", "101", "103", "199"] {
            cgi_error(&format!("Status: {status}\n\n"), "200 to 599");
            json_error(
                &format!(r#"{{"status": {status}, "body": ""}}"#),
                "200 to 599",
            );
        }
        assert_eq!(parse_cgi(b"Status: 200").unwrap().status, 200);
    }

    #[test]
    fn answers_204_and_304_carry_no_body() {
        for status in [204, 304] {
            let bare = parse_cgi(format!("Status: {status}\n").as_bytes()).unwrap();
            assert_eq!((bare.status, bare.body.len()), (status, 0));
            cgi_error(
                &format!("Status: {status}\n\n0123456789"),
                &format!("status {status} has no body, but the answer has 10 byte(s)"),
            );
            json_error(
                &format!(r#"{{"status": {status}, "body": "0123456789"}}"#),
                "has no body",
            );
            let empty =
                parse_json_answer(format!(r#"{{"status": {status}, "body": ""}}"#).as_bytes());
            assert_eq!(empty.unwrap().status, status);
        }
    }

    #[test]
    fn a_json_answer_gives_a_body_of_bytes_as_body_base64() {
        let answer = parse_json_answer(
            br#"{"status": 200, "headers": {"Content-Type": "image/png"}, "body_base64": "iVBORw0KGgo="}"#,
        )
        .unwrap();
        assert_eq!(answer.body, b"\x89PNG\r\n\x1a\n");
        assert_eq!(answer.content_type(), Some("image/png"));
        json_error(r#"{"body_base64": "%%%"}"#, "not standard base64");
        json_error(r#"{"body_base64": 5}"#, "body_base64 is not a string");
        json_error(r#"{"body": "", "body_base64": ""}"#, "not both");
    }

    #[test]
    fn an_answer_error_never_quotes_the_functions_output() {
        let secret = "SECRET-OUTPUT-1234";
        for output in [
            format!("Content-Type: text/plain\n{secret} no colon\n\n"),
            format!("Status: {secret}\n\n"),
            format!("Content-Type: text/plain\n{secret}(: 1\n\n"),
            format!("Content-Type: text/plain\nX-A: {secret}\u{e9}\n\n"),
        ] {
            let error = parse_cgi(output.as_bytes()).unwrap_err().to_string();
            assert!(!error.contains("SECRET"), "{error}");
        }
        for output in [
            format!(r#"{{"status": "{secret}"}}"#),
            format!(r#"{{"{secret}": 1}}"#),
            format!(r#"{{"headers": {{"{secret} x": "v"}}}}"#),
            format!(r#"{{"headers": {{"X-{secret}": 1}}}}"#),
        ] {
            let error = parse_json_answer(output.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(!error.contains("SECRET"), "{error}");
        }
    }

    #[test]
    fn an_output_that_echoes_its_input_is_not_read_as_an_answer_unless_required() {
        let input = b"Content-Type: text/html\r\n\r\n<script>steal()</script>";
        let wasi = Some(OutputKind::Stdout);
        // The function copied the input's head: the caller chose the headers.
        assert_eq!(read(wasi, input, false, Some(input)), Ok(None));
        assert_eq!(read(wasi, &input[..30], false, Some(input)), Ok(None));
        // Headers of its own, and the input in the body: an answer.
        let own = b"Content-Type: text/plain\n\nContent-Type: text/html";
        assert!(read(wasi, own, false, Some(input)).unwrap().is_some());
        // Trusted (mode on) or required ("http": true): read whatever it is.
        assert!(read(wasi, input, false, None).unwrap().is_some());
        assert!(read(wasi, input, true, Some(input)).unwrap().is_some());
        let json =
            br#"{"status": 302, "headers": {"Location": "https://evil.example/"}, "body": ""}"#;
        let string = Some(OutputKind::StringResult);
        assert_eq!(read(string, json, false, Some(json)), Ok(None));
        assert_eq!(
            read(string, json, false, None).unwrap().unwrap().status,
            302
        );
        assert_eq!(read(Some(OutputKind::Numbers), b"7", true, None), Ok(None));
    }

    #[test]
    fn the_default_content_type_is_configured_then_text_then_octet_stream() {
        let text = "text/plain; charset=utf-8";
        assert_eq!(
            default_content_type(Some("image/png"), b"hi", text),
            "image/png"
        );
        assert_eq!(default_content_type(None, "h\u{e9}".as_bytes(), text), text);
        assert_eq!(default_content_type(None, b"\x89PNG", text), OCTET_STREAM);
        assert_eq!(
            cgi_head(b"Status: 200\r\nX: 1\r\n\r\nbody"),
            b"Status: 200\r\nX: 1\r\n\r\n"
        );
        assert_eq!(cgi_head(b"Status: 200"), b"Status: 200");
    }
}
