//! Timestamps: RFC 3339 UTC with milliseconds, computed from a clock the caller passes in.

use serde::{Serialize, Serializer};
use std::fmt;

/// Microseconds since the Unix epoch, shown as `YYYY-MM-DDTHH:MM:SS.mmmZ` (or with six
/// fractional digits where microseconds matter: the ordering of messages).
///
/// The fixed-width forms sort lexically in time order, which is what lets D1 compare and
/// index the stored text directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn from_millis(millis: i64) -> Self {
        Self(millis.saturating_mul(1000))
    }

    pub fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub fn millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    pub fn seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds.saturating_mul(1_000_000)))
    }

    /// Parses RFC 3339 (`2025-11-04T09:00:00Z`, fractional seconds and offsets allowed).
    pub fn parse_rfc3339(input: &str) -> Option<Self> {
        let bytes = input.trim().as_bytes();
        if bytes.len() < 20 {
            return None;
        }
        let number = |from: usize, to: usize| -> Option<i64> {
            let text = std::str::from_utf8(bytes.get(from..to)?).ok()?;
            text.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| text.parse().ok())?
        };
        let separators_ok = bytes[4] == b'-'
            && bytes[7] == b'-'
            && matches!(bytes[10], b'T' | b't' | b' ')
            && bytes[13] == b':'
            && bytes[16] == b':';
        if !separators_ok {
            return None;
        }
        let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
        let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return None;
        }
        let mut at = 19;
        let mut micros = 0;
        if bytes[at] == b'.' {
            let start = at + 1;
            at = start;
            while at < bytes.len() && bytes[at].is_ascii_digit() {
                at += 1;
            }
            if at == start {
                return None;
            }
            // Digits beyond microseconds are dropped.
            let fraction = &bytes[start..at.min(start + 6)];
            for (place, digit) in fraction.iter().enumerate() {
                micros += i64::from(digit - b'0') * 10_i64.pow(5 - place as u32);
            }
        }
        let offset_minutes = match bytes.get(at..)? {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let digits = [*h1, *h2, *m1, *m2];
                if !digits.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                let value = |a: u8, b: u8| i64::from(a - b'0') * 10 + i64::from(b - b'0');
                let minutes = value(*h1, *h2) * 60 + value(*m1, *m2);
                if *sign == b'+' { minutes } else { -minutes }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
        Some(Self(seconds * 1_000_000 + micros))
    }

    /// With milliseconds: `2025-11-04T09:00:00.123Z`.
    pub fn to_rfc3339(self) -> String {
        let (date_time, micros) = self.split();
        format!("{date_time}.{:03}Z", micros / 1000)
    }

    /// With microseconds: `2025-11-04T09:00:00.123456Z`.
    pub fn to_rfc3339_micros(self) -> String {
        let (date_time, micros) = self.split();
        format!("{date_time}.{micros:06}Z")
    }

    fn split(self) -> (String, i64) {
        let seconds = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        let date_time = format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            second_of_day / 3600,
            second_of_day % 3600 / 60,
            second_of_day % 60
        );
        (date_time, micros)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(feature = "openapi")]
impl schemars::JsonSchema for Timestamp {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "date-time" })
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days-from-civil algorithm (proleptic Gregorian calendar).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_rfc3339_utc_with_milliseconds() {
        assert_eq!(Timestamp::from_millis(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp::from_millis(1_762_246_800_123).to_rfc3339(),
            "2025-11-04T09:00:00.123Z"
        );
        assert_eq!(
            Timestamp::from_millis(951_782_400_000).to_rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn parsing_is_the_inverse_of_formatting() {
        for millis in [0, 1, 999, 951_782_400_000, 1_762_246_800_123, 4_102_444_799_999] {
            let stamp = Timestamp::from_millis(millis);
            assert_eq!(Timestamp::parse_rfc3339(&stamp.to_rfc3339()), Some(stamp));
        }
    }

    #[test]
    fn microseconds_survive_a_round_trip_and_milliseconds_truncate() {
        let stamp = Timestamp::from_micros(1_762_246_800_123_456);
        assert_eq!(stamp.to_rfc3339_micros(), "2025-11-04T09:00:00.123456Z");
        assert_eq!(stamp.to_rfc3339(), "2025-11-04T09:00:00.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&stamp.to_rfc3339_micros()), Some(stamp));
        assert_eq!(
            Timestamp::parse_rfc3339("2025-11-04T09:00:00.1234569Z").map(Timestamp::micros),
            Some(1_762_246_800_123_456),
            "digits beyond microseconds are dropped"
        );
    }

    #[test]
    fn parses_offsets_and_the_seeds_form() {
        let utc = Timestamp::parse_rfc3339("2025-11-04T09:00:00Z");
        assert_eq!(utc, Some(Timestamp::from_millis(1_762_246_800_000)));
        assert_eq!(Timestamp::parse_rfc3339("2025-11-04T10:00:00+01:00"), utc);
        assert_eq!(Timestamp::parse_rfc3339("2025-11-04T04:30:00-04:30"), utc);
        assert_eq!(
            Timestamp::parse_rfc3339("2025-11-04T09:00:00.5Z").map(Timestamp::millis),
            Some(1_762_246_800_500)
        );
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        let cases = [
            ("", "empty"),
            ("2025-11-04", "date only"),
            ("2025-13-04T09:00:00Z", "month 13"),
            ("2025-02-29T09:00:00Z", "29 February in a common year"),
            ("2025-11-04T24:00:00Z", "hour 24"),
            ("2025-11-04T09:00:00", "no offset"),
            ("2025-11-04T09:00:00.Z", "empty fraction"),
            ("2025-11-04T09:00:00+0100", "offset without colon"),
            ("yesterday at noon!!", "prose"),
        ];
        for (input, description) in cases {
            assert_eq!(Timestamp::parse_rfc3339(input), None, "{description}: {input}");
        }
    }
}
