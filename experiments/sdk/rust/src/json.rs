//! JSON and hex output without `core::fmt`.

use alloc::string::String;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Args;
    use alloc::format;

    #[test]
    fn json_string_round_trips() {
        let text = "x\"y\\z\n\u{1}";
        let quoted = json_string(text);
        let args = Args::parse(&format!("{{\"k\":{quoted}}}")).unwrap();
        assert_eq!(args.get("k"), Ok(text));
        assert_eq!(hex(&[0, 0xab]), "00ab");
    }
}
