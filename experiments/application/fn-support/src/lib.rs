//! Helpers shared by the example functions.
//!
//! - [`parse_args`]: the engine sends arguments as a compact JSON object of
//!   strings (`{"a":"1","b":"x"}`); this reads it without pulling a JSON
//!   library into a small module.
//! - [`json_string`]: quotes and escapes a string for JSON output.
//! - [`string_abi`]: the body of a string-ABI export. The engine calls
//!   `name(ptr, len) -> (ptr, len)`; stable Rust cannot return two values from
//!   an export, so the crate exports `name_impl(ptr, len) -> u64` (the output
//!   pointer in the low half, its length in the high half) and
//!   `experiments/wrap-string-abi.sh` adds the two-result `name` export.

pub mod bump;

/// The arguments, in the order the engine sent them.
pub type Args = Vec<(String, String)>;

/// Parses a flat JSON object whose values are strings.
///
/// # Errors
/// A message saying where the text stops being such an object.
pub fn parse_args(json: &str) -> Result<Args, String> {
    let mut chars = json.trim().chars().peekable();
    let mut args = Vec::new();
    if chars.next() != Some('{') {
        return Err("arguments are not a JSON object".into());
    }
    skip_whitespace(&mut chars);
    if chars.peek() == Some(&'}') {
        return Ok(args);
    }
    loop {
        skip_whitespace(&mut chars);
        let key = parse_string(&mut chars)?;
        skip_whitespace(&mut chars);
        if chars.next() != Some(':') {
            return Err(format!("expected ':' after key {key:?}"));
        }
        skip_whitespace(&mut chars);
        let value = parse_string(&mut chars)
            .map_err(|error| format!("argument {key:?} is not a string: {error}"))?;
        args.push((key, value));
        skip_whitespace(&mut chars);
        match chars.next() {
            Some(',') => continue,
            Some('}') => return Ok(args),
            _ => return Err("expected ',' or '}' in the arguments".into()),
        }
    }
}

/// The value of `key`, or a message naming the missing argument.
pub fn get<'a>(args: &'a Args, key: &str) -> Result<&'a str, String> {
    args.iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.as_str())
        .ok_or_else(|| format!("missing argument: {key}"))
}

fn skip_whitespace(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
        chars.next();
    }
}

fn parse_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String, String> {
    if chars.next() != Some('"') {
        return Err("expected a string".into());
    }
    let mut text = String::new();
    loop {
        match chars.next().ok_or("unterminated string")? {
            '"' => return Ok(text),
            '\\' => match chars.next().ok_or("unterminated escape")? {
                '"' => text.push('"'),
                '\\' => text.push('\\'),
                '/' => text.push('/'),
                'b' => text.push('\u{8}'),
                'f' => text.push('\u{c}'),
                'n' => text.push('\n'),
                'r' => text.push('\r'),
                't' => text.push('\t'),
                'u' => {
                    let unit = hex4(chars)?;
                    let code = if (0xD800..0xDC00).contains(&unit) {
                        if chars.next() != Some('\\') || chars.next() != Some('u') {
                            return Err("lone surrogate in string".into());
                        }
                        let low = hex4(chars)?;
                        0x10000 + ((unit - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF)
                    } else {
                        unit
                    };
                    text.push(char::from_u32(code).ok_or("invalid \\u escape")?);
                }
                other => return Err(format!("invalid escape \\{other}")),
            },
            c => text.push(c),
        }
    }
}

fn hex4(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<u32, String> {
    let mut value = 0;
    for _ in 0..4 {
        let digit = chars
            .next()
            .and_then(|c| c.to_digit(16))
            .ok_or("invalid \\u escape")?;
        value = value * 16 + digit;
    }
    Ok(value)
}

/// `text` as a JSON string literal, quotes included.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    push_json_string(&mut out, text);
    out
}

/// Appends `text` to `out` as a JSON string literal, quotes included.
pub fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str("\\u00");
                out.push(HEX_DIGITS[(c as usize) >> 4] as char);
                out.push(HEX_DIGITS[(c as usize) & 0xf] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`, without going through `core::fmt` (which is
/// slow to interpret and large).
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(HEX_DIGITS[(byte >> 4) as usize] as char);
        out.push(HEX_DIGITS[(byte & 0xf) as usize] as char);
    }
    out
}

/// Runs `body` on the input the engine wrote at `ptr..ptr+len` and returns
/// the output's location packed as `ptr | len << 32`.
///
/// The output is leaked on purpose: the engine reads it and then discards
/// the whole instance.
///
/// # Safety
/// `ptr..ptr+len` must be the engine's input bytes in this instance's memory.
pub unsafe fn string_abi(ptr: *const u8, len: usize, body: impl FnOnce(&str) -> String) -> u64 {
    // SAFETY: the caller guarantees the range is the engine-written input.
    let input = unsafe { std::slice::from_raw_parts(ptr, len) };
    let output = match std::str::from_utf8(input) {
        Ok(text) => body(text),
        Err(_) => r#"{"status":"400","body":"input is not UTF-8"}"#.to_owned(),
    };
    let output = output.into_bytes().leak();
    (output.as_ptr() as u32 as u64) | ((output.len() as u64) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_engine_sends() {
        let args = parse_args(r#"{"arg_uri":"yes","q":"a \"b\" \u00e9 \ud83d\ude00"}"#).unwrap();
        assert_eq!(args[0], ("arg_uri".into(), "yes".into()));
        assert_eq!(args[1].1, "a \"b\" é 😀");
        assert!(parse_args("{}").unwrap().is_empty());
        assert!(parse_args(r#"{"n": 5}"#).unwrap_err().contains("not a string"));
    }

    #[test]
    fn json_string_round_trips() {
        let text = "x\"y\\z\n\u{1}";
        let quoted = json_string(text);
        let args = parse_args(&format!("{{\"k\":{quoted}}}")).unwrap();
        assert_eq!(args[0].1, text);
    }
}
