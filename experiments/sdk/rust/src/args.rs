//! [`Args`]: the flat JSON object of strings the engine sends, parsed
//! without a JSON library.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// The arguments of one call, in the order the engine sent them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args {
    pairs: Vec<(String, String)>,
}

impl Args {
    /// Parses a flat JSON object whose values are strings:
    /// `{"arg_uri":"yes","name":"edge"}`.
    ///
    /// # Errors
    /// A message saying where the text stops being such an object.
    pub fn parse(json: &str) -> Result<Self, String> {
        let mut chars = json.trim().chars().peekable();
        let mut pairs = Vec::new();
        if chars.next() != Some('{') {
            return Err("arguments are not a JSON object".into());
        }
        skip_whitespace(&mut chars);
        if chars.peek() == Some(&'}') {
            return Ok(Self { pairs });
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
            pairs.push((key, value));
            skip_whitespace(&mut chars);
            match chars.next() {
                Some(',') => continue,
                Some('}') => return Ok(Self { pairs }),
                _ => return Err("expected ',' or '}' in the arguments".into()),
            }
        }
    }

    /// The value of `key`.
    ///
    /// # Errors
    /// `missing argument: <key>` when the call did not send it.
    pub fn get(&self, key: &str) -> Result<&str, String> {
        self.get_or(key)
            .ok_or_else(|| format!("missing argument: {key}"))
    }

    /// The value of `key`, if the call sent it.
    pub fn get_or(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// Every `(key, value)`, in request order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// How many arguments the call sent.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether the call sent no arguments.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

fn skip_whitespace(chars: &mut core::iter::Peekable<core::str::Chars<'_>>) {
    while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
        chars.next();
    }
}

fn parse_string(chars: &mut core::iter::Peekable<core::str::Chars<'_>>) -> Result<String, String> {
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

fn hex4(chars: &mut core::iter::Peekable<core::str::Chars<'_>>) -> Result<u32, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_engine_sends() {
        let args = Args::parse(r#"{"arg_uri":"yes","q":"a \"b\" \u00e9 \ud83d\ude00"}"#).unwrap();
        assert_eq!(args.get("arg_uri"), Ok("yes"));
        assert_eq!(args.iter().nth(1), Some(("q", "a \"b\" é 😀")));
        assert!(Args::parse("{}").unwrap().is_empty());
        assert!(
            Args::parse(r#"{"n": 5}"#)
                .unwrap_err()
                .contains("not a string")
        );
        assert_eq!(args.get("nope"), Err("missing argument: nope".into()));
    }
}
