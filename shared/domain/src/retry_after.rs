//! `Retry-After`, read the same way for every peer we call (channel providers, webhook receivers,
//! CRMs): either delay-seconds (`120`) or an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`, the
//! IMF-fixdate form RFC 9110 requires senders to use), as the seconds to wait from `now`. Seconds
//! with a fraction (`2.0`, which Shopify's REST Admin API sends with its 429s) are read too, and
//! waited out to the next whole second: refusing them would make the caller fall back on its own,
//! far longer, backoff.

use crate::time::Timestamp;

/// Seconds to wait, or None when the value is neither form. A date already past is 0; a wait
/// longer than `u32` seconds saturates (callers cap it to their own policy).
pub fn seconds(value: &str, now: Timestamp) -> Option<u32> {
    let value = value.trim();
    if let Some(delay) = delay_seconds(value) {
        return Some(u32::try_from(delay).unwrap_or(u32::MAX));
    }
    let at = http_date(value)?;
    let wait = at.seconds() - now.seconds();
    Some(u32::try_from(wait.max(0)).unwrap_or(u32::MAX))
}

/// Whole seconds (`120`), or seconds with a fraction (`2.0`, `1.5`) rounded up; digits only, no
/// sign or exponent. A number too long for `u64` saturates.
fn delay_seconds(value: &str) -> Option<u64> {
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    let (whole, fraction) = match value.split_once('.') {
        Some((whole, fraction)) if digits(fraction) => (whole, fraction),
        Some(_) => return None,
        None => (value, ""),
    };
    if !digits(whole) {
        return None;
    }
    let whole = whole.parse::<u64>().unwrap_or(u64::MAX);
    Some(whole.saturating_add(u64::from(fraction.bytes().any(|byte| byte != b'0'))))
}

/// Parses an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(value: &str) -> Option<Timestamp> {
    let (_weekday, rest) = value.split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: u32 = parts.next()?.parse().ok()?;
    let time = parts.next()?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    Timestamp::parse_rfc3339(&format!("{year:04}-{month:02}-{day:02}T{time}Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> Timestamp {
        Timestamp::parse_rfc3339(rfc3339).unwrap_or(Timestamp::from_millis(0))
    }

    #[test]
    fn delay_seconds_and_http_dates_are_read_as_a_wait_from_now() {
        let now = at("2015-10-21T07:27:00Z");
        let cases = [
            ("120", Some(120), "delay-seconds"),
            (" 0 ", Some(0), "no wait"),
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some(60), "a date a minute ahead"),
            ("Wed, 21 Oct 2015 07:00:00 GMT", Some(0), "a date already past"),
            ("99999999999", Some(u32::MAX), "an absurd delay saturates"),
            ("123456789012345678901234567890", Some(u32::MAX), "past u64 too"),
            ("2.0", Some(2), "Shopify's seconds with a fraction"),
            ("1.5", Some(2), "a fraction is waited out to the next second"),
            ("0.25", Some(1), "a fraction of a second is a second"),
            ("0.0", Some(0), "no wait, with a fraction"),
            ("1.", None, "a point without a fraction"),
            (".5", None, "a fraction without seconds"),
            ("1.2.3", None, "two points"),
            ("1e3", None, "an exponent"),
            ("+5", None, "a sign"),
            ("-5", None, "negative"),
            ("soon", None, "prose"),
            ("Wed, 21 Oct 2015 07:28:00 CET", None, "not GMT"),
            (
                "Wednesday, 21-Oct-15 07:28:00 GMT",
                None,
                "the obsolete RFC 850 form",
            ),
            ("", None, "empty"),
        ];
        for (value, expected, description) in cases {
            assert_eq!(seconds(value, now), expected, "{description}: {value:?}");
        }
    }
}
