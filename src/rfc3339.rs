//! RFC 3339 timestamps in UTC, for the engine's log lines ([`format_seconds`]),
//! function log lines ([`format_millis`]) and the `since` of a log query
//! ([`parse`]). Hand-written rather than pulling a date library into an
//! embedded binary (one was about 70 KB).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2026-11-28T19:07:00.123Z`.
pub(crate) fn format_millis(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!(
        "{}.{:03}Z",
        date_and_time(since_epoch.as_secs()),
        since_epoch.subsec_millis()
    )
}

/// `2026-11-28T19:07:00Z`: whole seconds, as the engine's log lines show.
pub(crate) fn format_seconds(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}Z", date_and_time(since_epoch.as_secs()))
}

/// `YYYY-MM-DDTHH:MM:SS` of a count of seconds since 1970-01-01 UTC.
fn date_and_time(seconds: u64) -> String {
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    // At most u64::MAX / 86400 days: always an i64.
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(i64::MAX));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (`t` and `z` and a space
/// for `T` are accepted, as RFC 3339 allows). Times before 1970 are refused.
///
/// # Errors
/// A message saying what is wrong, for a 400.
pub fn parse(text: &str) -> Result<SystemTime, String> {
    let invalid = || {
        format!(
            "{text:?} is not an RFC 3339 timestamp such as 2026-11-28T19:07:00Z or 2026-11-28T20:07:00.5+01:00"
        )
    };
    let bytes = text.as_bytes();
    if bytes.len() < 20 {
        return Err(invalid());
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let digits = &text[range];
        if digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse().map_err(|_| invalid())
        } else {
            Err(invalid())
        }
    };
    let separators_ok = bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't' | b' ')
        && bytes[13] == b':'
        && bytes[16] == b':';
    if !separators_ok || !bytes[..19].is_ascii() {
        return Err(invalid());
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return Err(invalid()),
    };
    // A leap second (60) is read as the last second of its minute.
    if !(1..=days_in_month).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return Err(invalid());
    }
    let mut rest = &text[19..];
    let mut nanos: u32 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let mut place_value = 100_000_000;
        for digit in fraction.bytes().take(digits.min(9)) {
            nanos += u32::from(digit - b'0') * place_value;
            place_value /= 10;
        }
        rest = &fraction[digits..];
    }
    let offset_seconds: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let offset = rest.as_bytes();
            if offset.len() != 6
                || !rest.is_ascii()
                || !matches!(offset[0], b'+' | b'-')
                || offset[3] != b':'
            {
                return Err(invalid());
            }
            let parse_part = |part: &str| -> Result<i64, String> {
                if part.bytes().all(|b| b.is_ascii_digit()) {
                    part.parse().map_err(|_| invalid())
                } else {
                    Err(invalid())
                }
            };
            let (hours, minutes) = (parse_part(&rest[1..3])?, parse_part(&rest[4..6])?);
            if hours > 23 || minutes > 59 {
                return Err(invalid());
            }
            let sign = if offset[0] == b'-' { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second.min(59)
            - offset_seconds;
    let seconds = u64::try_from(seconds).map_err(|_| format!("{text:?} is before 1970"))?;
    Ok(UNIX_EPOCH + Duration::new(seconds, nanos))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis)
    }

    #[test]
    fn formats_utc_with_milliseconds() {
        assert_eq!(format_millis(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_millis(at(951_782_400, 7)),
            "2000-02-29T00:00:00.007Z"
        );
        assert_eq!(
            format_millis(at(1_795_475_296, 999)),
            "2026-11-23T23:08:16.999Z"
        );
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        for (seconds, millis) in [(0, 0), (951_782_400, 7), (4_107_542_399, 500)] {
            let time = at(seconds, millis);
            assert_eq!(parse(&format_millis(time)).unwrap(), time);
        }
        assert_eq!(parse("2026-11-23T23:08:16Z").unwrap(), at(1_795_475_296, 0));
        assert_eq!(
            parse("2026-11-24T00:38:16.25+01:30").unwrap(),
            at(1_795_475_296, 250)
        );
        assert_eq!(
            parse("2026-11-23t18:08:16-05:00").unwrap(),
            at(1_795_475_296, 0)
        );
        assert_eq!(
            parse("2026-11-23 23:08:16.123456789z").unwrap(),
            UNIX_EPOCH + Duration::new(1_795_475_296, 123_456_789)
        );
    }

    #[test]
    fn refuses_what_is_not_rfc3339() {
        for bad in [
            "",
            "yesterday",
            "2026-11-23",
            "2026-11-23T23:08:16",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T23:08:16.Z",
            "2026-11-23T23:08:16+0100",
            "2026-11-23T23:08:16+01:00x",
            "1969-12-31T23:59:59Z",
            "+026-11-23T23:08:16Z",
            "2026-11-23T23:0é:16Z",
            "2026-1é-23T23:08:16Z",
            "2026-11-23T23:08:16+0é:0",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
