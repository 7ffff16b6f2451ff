//! Reading a provider's "wait this long" hints: `retry-after-ms`, `retry-after` (seconds, possibly
//! fractional, or an HTTP date), Go-style reset durations (`6m0s`) and Google's `"37s"` durations.
//!
//! The parsers read each hint in its own unit and do not cap it; the cap ([`MAX_HINT`]) is applied
//! once, after conversion, where every hint becomes an error's `retry_after`
//! (`Error::with_retry_after`), whichever header, body or provider it came from.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

/// The longest wait a provider's hint may ask for; a longer one (a hostile or broken header, a
/// date years away) is read as this long. The router caps how long a target rests further.
pub(crate) const MAX_HINT: Duration = Duration::from_secs(24 * 60 * 60);

/// The provider's requested wait, from `retry-after-ms` (read first, as the official SDKs do) or
/// `retry-after`. `now` is the wall clock used for HTTP dates. Not capped (see [`MAX_HINT`]).
pub(crate) fn from_headers(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(ms) = header_str(headers, "retry-after-ms").and_then(parse_number) {
        return Some(duration_from_secs(ms / 1000.0));
    }
    let value = header_str(headers, "retry-after")?;
    if let Some(d) = parse_seconds(value) {
        return Some(d);
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// A non-negative decimal number of seconds (`"2"`, `"1.5"`); one too large for a `Duration`
/// saturates (the cap comes later).
pub(crate) fn parse_seconds(value: &str) -> Option<Duration> {
    parse_number(value).map(duration_from_secs)
}

/// A non-negative decimal number (`"2"`, `"1.5"`), in whatever unit its header uses.
fn parse_number(value: &str) -> Option<f64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    value.parse().ok()
}

/// Seconds as a `Duration`, saturating for values beyond its range (never negative here).
fn duration_from_secs(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// A Google protobuf duration as JSON writes it: `"37s"`, `"0.5s"`.
pub(crate) fn parse_google_duration(value: &str) -> Option<Duration> {
    parse_seconds(value.trim().strip_suffix('s')?)
}

/// A Go duration string as OpenAI's `x-ratelimit-reset-*` headers use: `"1s"`, `"6m0s"`,
/// `"120ms"`, `"1h2m3.5s"`.
pub(crate) fn parse_go_duration(value: &str) -> Option<Duration> {
    let mut rest = value.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * scale;
    }
    Some(duration_from_secs(total))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An HTTP date in the preferred IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`), or the
/// obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`)
/// forms that RFC 9110 still asks recipients to accept.
pub(crate) fn parse_http_date(value: &str) -> Option<SystemTime> {
    let value = value.trim();
    let (day, month, year, time) = if let Some((_, rest)) = value.split_once(", ") {
        if let [d, m, y, t, "GMT"] = rest.split(' ').collect::<Vec<_>>()[..] {
            (d, m, y.parse::<i64>().ok()?, t)
        } else if let [dmy, t, "GMT"] = rest.split(' ').collect::<Vec<_>>()[..] {
            let mut parts = dmy.split('-');
            let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
            let y: i64 = y.parse().ok()?;
            // RFC 9110: a two-digit year more than 50 years in the future is in the past century.
            (
                d,
                m,
                if y < 70 {
                    2000 + y
                } else if y < 100 {
                    1900 + y
                } else {
                    y
                },
                t,
            )
        } else {
            return None;
        }
    } else {
        let parts: Vec<&str> = value.split_whitespace().collect();
        let [_, m, d, t, y] = parts[..] else {
            return None;
        };
        (d, m, y.parse::<i64>().ok()?, t)
    };
    let day: i64 = day.parse().ok()?;
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 || hms.next().is_some() {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// An RFC 3339 timestamp (`2026-01-01T00:00:30Z`, `2026-01-01T01:00:30.5+01:00`), as Anthropic's
/// `anthropic-ratelimit-*-reset` headers carry. Times before 1970 are refused.
pub(crate) fn parse_rfc3339(value: &str) -> Option<SystemTime> {
    let b = value.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix(b".") {
        let len = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        for (i, d) in frac[..len.min(9)].iter().enumerate() {
            nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = &frac[len..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let [h1, h2, m1, m2] = digits.map(|d| i64::from(d - b'0'));
            let (oh, om) = (h1 * 10 + h2, m1 * 10 + m2);
            if oh > 23 || om > 59 {
                return None;
            }
            let offset = oh * 3600 + om * 60;
            if *sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + s - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_ms_wins_over_retry_after() {
        let h = headers(&[("retry-after-ms", "1500"), ("retry-after", "7")]);
        assert_eq!(
            from_headers(&h, SystemTime::now()),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn retry_after_ms_is_read_in_milliseconds_before_any_cap() {
        // 90 000 ms is a minute and a half, far under the cap: it must not be read as seconds.
        let h = headers(&[("retry-after-ms", "90000")]);
        assert_eq!(
            from_headers(&h, SystemTime::now()),
            Some(Duration::from_secs(90))
        );
        let h = headers(&[("retry-after-ms", "2.5")]);
        assert_eq!(
            from_headers(&h, SystemTime::now()),
            Some(Duration::from_micros(2500))
        );
    }

    #[test]
    fn retry_after_seconds_may_be_fractional() {
        let now = SystemTime::now();
        assert_eq!(
            from_headers(&headers(&[("retry-after", "2")]), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            from_headers(&headers(&[("retry-after", "0.25")]), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(from_headers(&headers(&[("retry-after", "-1")]), now), None);
        assert_eq!(
            from_headers(&headers(&[("retry-after", "soon")]), now),
            None
        );
    }

    #[test]
    fn retry_after_http_date_is_relative_to_now() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_767); // Sun, 06 Nov 1994 08:49:27 GMT
        let h = headers(&[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]);
        assert_eq!(from_headers(&h, now), Some(Duration::from_secs(10)));
        // A date in the past means "now".
        let later = now + Duration::from_secs(100);
        assert_eq!(from_headers(&h, later), Some(Duration::ZERO));
    }

    #[test]
    fn http_date_forms() {
        let expected = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(expected)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(expected)
        );
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(expected));
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"), None);
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_go_duration("120ms"), Some(Duration::from_millis(120)));
        assert_eq!(
            parse_go_duration("1h2m3.5s"),
            Some(Duration::from_millis(3_723_500))
        );
        assert_eq!(parse_go_duration("abc"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn google_durations() {
        assert_eq!(parse_google_duration("37s"), Some(Duration::from_secs(37)));
        assert_eq!(
            parse_google_duration("0.5s"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_google_duration("37"), None);
    }

    #[test]
    fn rfc3339_timestamps() {
        let at = |secs: u64| Some(UNIX_EPOCH + Duration::from_secs(secs));
        // 2026-01-01T00:00:00Z is 1_767_225_600.
        assert_eq!(parse_rfc3339("2026-01-01T00:00:30Z"), at(1_767_225_630));
        assert_eq!(parse_rfc3339("2026-01-01t00:00:30z"), at(1_767_225_630));
        assert_eq!(
            parse_rfc3339("2026-01-01T01:00:30+01:00"),
            at(1_767_225_630)
        );
        assert_eq!(
            parse_rfc3339("2025-12-31T23:00:30-01:00"),
            at(1_767_225_630)
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:30.25Z"),
            Some(UNIX_EPOCH + Duration::from_millis(1_767_225_630_250))
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:30.1234567891Z"),
            Some(UNIX_EPOCH + Duration::new(1_767_225_630, 123_456_789))
        );
        for bad in [
            "",
            "2026-01-01",
            "2026-01-01T00:00:30",
            "2026-13-01T00:00:30Z",
            "2026-01-01T24:00:30Z",
            "2026-01-01T00:00:30.Z",
            "2026-01-01T00:00:30+0100",
            "1969-12-31T23:59:59Z",
            "Sun, 06 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = parse_rfc3339(&s);
            let _ = parse_seconds(&s);
            let _ = parse_go_duration(&s);
            let _ = parse_google_duration(&s);
            let _ = parse_http_date(&s);
        }
    }
}
