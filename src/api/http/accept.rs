//! Content negotiation: whether a request's `Accept` header ranks
//! `application/json` above `text/plain`.
//!
//! Only the choice between the two answer formats lives here; rendering
//! is the REST API's (`rest::reply`). Text is the default, as the
//! reference engine answers: JSON only when the client ranks
//! `application/json` higher (by media range specificity and `q` value,
//! RFC 9110 section 12.5.1) or accepts no `text/plain` at all. A tie (`application/json, text/plain, */*`, as axios
//! sends by default), `*/*` alone and no `Accept` answer text.

/// Whether the answer should be JSON, given every `Accept` header value of
/// the request (several headers are one comma-separated list).
pub fn prefers_json<'a>(accept_values: impl IntoIterator<Item = &'a str>) -> bool {
    let ranges: Vec<MediaRange> = accept_values
        .into_iter()
        .flat_map(|value| value.split(','))
        .filter_map(MediaRange::parse)
        .collect();
    if ranges.is_empty() {
        return false;
    }
    let json = quality(&ranges, "application", "json");
    let text = quality(&ranges, "text", "plain");
    json > text
}

/// One element of an `Accept` list: `type/subtype` (either may be `*`) and
/// its weight in thousandths (`q=0.5` is 500), so weights compare exactly.
#[derive(Debug)]
struct MediaRange {
    main_type: String,
    subtype: String,
    weight: u16,
}

impl MediaRange {
    /// Parses one element; `None` for an empty or malformed one (no `/`, a
    /// `q` that is not a number from 0 to 1), which is then ignored.
    fn parse(element: &str) -> Option<Self> {
        let mut parts = element.split(';');
        let (main_type, subtype) = parts.next()?.trim().split_once('/')?;
        let (main_type, subtype) = (main_type.trim(), subtype.trim());
        if main_type.is_empty() || subtype.is_empty() || (main_type == "*" && subtype != "*") {
            return None;
        }
        let mut weight = 1000;
        for parameter in parts {
            let Some((name, value)) = parameter.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("q") {
                weight = parse_weight(value.trim())?;
                // Parameters after q are accept-extensions: not ours to read.
                break;
            }
        }
        Some(Self {
            main_type: main_type.to_ascii_lowercase(),
            subtype: subtype.to_ascii_lowercase(),
            weight,
        })
    }

    /// How specifically this range names `main_type/subtype`: 3 exactly,
    /// 2 as `type/*`, 1 as `*/*`, `None` when it does not match.
    fn specificity(&self, main_type: &str, subtype: &str) -> Option<u8> {
        match (self.main_type.as_str(), self.subtype.as_str()) {
            (m, s) if m == main_type && s == subtype => Some(3),
            (m, "*") if m == main_type => Some(2),
            ("*", "*") => Some(1),
            _ => None,
        }
    }
}

/// `0`, `1`, `0.5`, `1.000`: a qvalue in thousandths.
fn parse_weight(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fraction_thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(fraction_thousandths),
        "1" if fraction_thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The weight the client gives `main_type/subtype`: that of the most
/// specific range that matches it (the highest among equally specific
/// ones), 0 when none does.
fn quality(ranges: &[MediaRange], main_type: &str, subtype: &str) -> u16 {
    ranges
        .iter()
        .filter_map(|range| {
            range
                .specificity(main_type, subtype)
                .map(|specificity| (specificity, range.weight))
        })
        .max()
        .map_or(0, |(_, weight)| weight)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_only_when_ranked_above_text() {
        // (Accept headers, JSON expected)
        let cases: &[(&[&str], bool)] = &[
            (&[], false),
            (&[""], false),
            (&["*/*"], false),
            (&["application/json"], true),
            (&["Application/JSON"], true),
            (&["application/json; charset=utf-8"], true),
            (&["application/*"], true),
            // axios's default: a tie, so text.
            (&["application/json, text/plain, */*"], false),
            (&["text/plain"], false),
            (&["text/*"], false),
            (&["text/plain, application/json"], false),
            (&["application/json, */*;q=0.8"], true),
            (&["application/json;q=0.9, text/plain"], false),
            (&["application/json, text/plain;q=0.5"], true),
            (&["application/json;q=0.5, text/plain;q=0.5"], false),
            (&["application/json;q=0.5, */*;q=0.4"], true),
            (&["text/*;q=0.3, application/json;q=0.4"], true),
            // A specific range overrides a wildcard, whatever their order.
            (&["*/*;q=1, application/json;q=0"], false),
            (&["application/json, text/plain;q=0, */*"], true),
            (&["application/json;q=0"], false),
            (&["text/plain;q=0, application/json;q=0"], false),
            // Browsers: nothing for either but */*, a tie.
            (
                &["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"],
                false,
            ),
            (&["text/html"], false),
            // Several headers form one list.
            (&["application/json", "text/plain"], false),
            (&["text/plain;q=0.1", "application/json"], true),
            // Malformed elements are ignored, not fatal.
            (&["application/json;q=2"], false),
            (&["application/json;q=abc, text/plain"], false),
            (&["garbage, application/json"], true),
            (&["application/json;q=0.5;ext=1, text/plain;q=0.25"], true),
            (&["*/json"], false),
        ];
        for (headers, expected) in cases {
            assert_eq!(
                prefers_json(headers.iter().copied()),
                *expected,
                "Accept: {headers:?}"
            );
        }
    }

    #[test]
    fn weights_parse_to_thousandths() {
        for (value, expected) in [
            ("0", Some(0)),
            ("1", Some(1000)),
            ("1.000", Some(1000)),
            ("0.5", Some(500)),
            ("0.125", Some(125)),
            ("0.", Some(0)),
            ("1.5", None),
            ("0.1234", None),
            ("-0", None),
            ("", None),
        ] {
            assert_eq!(parse_weight(value), expected, "{value:?}");
        }
    }
}
