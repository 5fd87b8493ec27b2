//! [`Query`]: a request's query string, split into percent-decoded pairs.
//! Which keys mean what is each route's business.

/// A request's query string, percent-decoded.
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `query`, the part of a request target after its `?`.
    pub fn parse(query: &str) -> Self {
        Self(
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(key), percent_decode(value))
                })
                .collect(),
        )
    }

    /// The value of the first `key`, if the query has one.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// `?key=1`, `?key=true` (or `?key` alone).
    pub fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|value| matches!(value, "" | "1" | "true"))
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (byte, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                index += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                index += 1;
            }
            _ => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_read_as_the_gateway_sends_them() {
        let query = Query::parse("name=gcd&tail=5&since=2026-01-02T03%3A04%3A05Z&follow");
        assert_eq!(query.get("name"), Some("gcd"));
        assert_eq!(query.get("since"), Some("2026-01-02T03:04:05Z"));
        assert!(query.flag("follow"));
        assert!(!query.flag("usage"));
        assert!(Query::parse("usage=1").flag("usage"));
    }
}
