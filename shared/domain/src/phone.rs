//! Customer phone numbers: normalising what people type into E.164 (`+353871234567`).

#[path = "phone_countries.rs"]
mod countries;

use std::fmt;

use countries::{CALLING_CODES, COUNTRIES, CountryPlan};

/// E.164 allows at most 15 digits, country calling code included.
const MAX_DIGITS: usize = 15;
/// Fewer digits than this in total is not a dialable number anywhere.
const MIN_DIGITS: usize = 8;
/// Shortest national significant number we accept after the calling code.
const MIN_NATIONAL_DIGITS: usize = 4;
/// The North American Numbering Plan: +1 followed by exactly ten digits.
const NANP_CALLING_CODE: &str = "1";
const NANP_NATIONAL_DIGITS: usize = 10;

/// ISO 3166-1 alpha-2 country whose numbering plan we know (e.g. "IE").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country {
    plan: &'static CountryPlan,
}

impl Country {
    /// Case-insensitive: "ie", "IE". Surrounding whitespace is ignored.
    /// Unknown or malformed -> [`PhoneError::UnknownCountry`].
    pub fn parse(code: &str) -> Result<Country, PhoneError> {
        let wanted = code.trim().to_ascii_uppercase();
        COUNTRIES
            .binary_search_by(|plan| plan.code.cmp(wanted.as_str()))
            .ok()
            .and_then(|index| COUNTRIES.get(index))
            .map(|plan| Country { plan })
            .ok_or_else(|| PhoneError::UnknownCountry(code.to_string()))
    }

    /// The ISO 3166-1 alpha-2 code, upper case: "IE".
    pub fn code(&self) -> &'static str {
        self.plan.code
    }

    /// The country calling code, digits only: "353".
    pub fn calling_code(&self) -> &'static str {
        self.plan.calling_code
    }

    fn is_nanp(&self) -> bool {
        self.plan.calling_code == NANP_CALLING_CODE
    }
}

/// A phone number in E.164 form: '+' then the country calling code and the
/// national significant number, 8 to 15 digits in all (e.g. "+353871234567").
/// Two inputs that reach the same person compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone(String);

impl Phone {
    /// Normalises what a person typed.
    ///
    /// - Separators are ignored: spaces (also non-breaking), `-`, `.`, `/`,
    ///   `(`, `)`; a single leading `+` marks the international form.
    /// - International forms: `+<cc><number>`, `00<cc><number>`, and for
    ///   North American default countries also `011<cc><number>`. A `(0)`
    ///   written right after the calling code (`+44 (0)20 ...`) is the
    ///   country's trunk prefix and is dropped where the trunk prefix is 0.
    /// - Anything else is a national number of `default_country`; its trunk
    ///   prefix (`0` in most countries, `1` in North America, `8` in Russia)
    ///   is dropped. Italy, San Marino and the Vatican keep their leading 0.
    pub fn parse(input: &str, default_country: Option<Country>) -> Result<Phone, PhoneError> {
        // Most numbers a CRM sends are E.164 already: they are checked as they are, without being
        // scanned into a new string of digits. What this accepts and refuses, and why, is what
        // the international form below says.
        let trimmed = input.trim();
        if let Some(digits) = trimmed.strip_prefix('+')
            && !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            let (calling_code, national) = split_calling_code(digits)?;
            check_lengths(calling_code, national)?;
            return Ok(Phone(trimmed.to_owned()));
        }
        let scanned = Scanned::new(input)?;
        let digits = scanned.digits.as_str();

        if scanned.plus {
            return scanned.international(0);
        }
        if digits.starts_with("00") {
            return scanned.international(2);
        }
        let Some(country) = default_country else {
            return Err(PhoneError::MissingCountry);
        };
        if country.is_nanp() && digits.starts_with("011") {
            return scanned.international(3);
        }
        let national = strip_trunk_prefix(digits, country.plan.trunk_prefixes);
        assemble(country.plan.calling_code, national)
    }

    /// A number as this type wrote it to storage, read back: E.164 and checked when it was
    /// stored, so not checked again (a sync reads a thousand).
    pub fn stored(text: String) -> Self {
        Self(text)
    }

    /// The E.164 string: "+353871234567".
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Phone {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Why an input is not a phone number we can store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneError {
    /// Nothing but whitespace or separators.
    Empty,
    /// A character that is neither a digit, a separator nor the leading '+'.
    InvalidCharacter(char),
    /// A national number (no '+' or international prefix) and no default country.
    MissingCountry,
    /// [`Country::parse`] did not know the code it was given.
    UnknownCountry(String),
    /// The digits after '+' or the international prefix start no assigned calling code.
    UnknownCallingCode,
    /// Fewer than 4 digits after the calling code, 8 in total, or 10 after +1.
    TooShort,
    /// More than 15 digits in total, or more than 10 after +1.
    TooLong,
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhoneError::Empty => f.write_str("phone number is empty"),
            PhoneError::InvalidCharacter(c) => write!(
                f,
                "phone number contains {c:?}; only digits, one leading '+' and the separators space - . / ( ) are allowed"
            ),
            PhoneError::MissingCountry => f.write_str(
                "phone number has no country code and no default country is configured; send it as +<country code><number> or set default_country",
            ),
            PhoneError::UnknownCountry(code) => write!(
                f,
                "unknown country {code:?}; expected an ISO 3166-1 alpha-2 code such as IE, GB or US"
            ),
            PhoneError::UnknownCallingCode => f.write_str(
                "phone number starts with a country calling code that is not assigned; check the digits after + or 00",
            ),
            PhoneError::TooShort => f.write_str(
                "phone number is too short: it needs at least 8 digits including the country code (+1 numbers: exactly 10 after the 1)",
            ),
            PhoneError::TooLong => f.write_str(
                "phone number is too long: E.164 allows at most 15 digits including the country code (+1 numbers: exactly 10 after the 1)",
            ),
        }
    }
}

impl std::error::Error for PhoneError {}

/// The input reduced to its digits, plus what the decorations told us.
struct Scanned {
    digits: String,
    /// The input started with '+'.
    plus: bool,
    /// Digit offset of the first "(0)" group, if the input had one.
    zero_in_parens_at: Option<usize>,
}

impl Scanned {
    fn new(input: &str) -> Result<Scanned, PhoneError> {
        let trimmed = input.trim();
        let (plus, body) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut digits = String::with_capacity(body.len());
        let mut zero_in_parens_at = None;
        for (index, c) in body.char_indices() {
            match c {
                '0'..='9' => digits.push(c),
                '(' => {
                    let is_zero_group = body.get(index..).is_some_and(|s| s.starts_with("(0)"));
                    if is_zero_group && zero_in_parens_at.is_none() {
                        zero_in_parens_at = Some(digits.len());
                    }
                }
                ' ' | '\u{00A0}' | '\u{2007}' | '\u{202F}' | '-' | '.' | '/' | ')' => {}
                other => return Err(PhoneError::InvalidCharacter(other)),
            }
        }
        if digits.is_empty() {
            return Err(PhoneError::Empty);
        }
        Ok(Scanned {
            digits,
            plus,
            zero_in_parens_at,
        })
    }

    /// Reads `<cc><number>` after an international prefix of `prefix_len` digits.
    fn international(&self, prefix_len: usize) -> Result<Phone, PhoneError> {
        let rest = self.digits.get(prefix_len..).unwrap_or_default();
        let (calling_code, mut national) = split_calling_code(rest)?;
        let national_starts_at = prefix_len + calling_code.len();
        if self.zero_in_parens_at == Some(national_starts_at) && trunk_prefix_is_zero(calling_code) {
            national = national.get(1..).unwrap_or_default();
        }
        assemble(calling_code, national)
    }
}

/// Splits off the assigned calling code that `digits` starts with.
fn split_calling_code(digits: &str) -> Result<(&'static str, &str), PhoneError> {
    for len in 1..=3 {
        let Some((head, tail)) = digits.split_at_checked(len) else {
            break;
        };
        if let Ok(index) = CALLING_CODES.binary_search(&head)
            && let Some(code) = CALLING_CODES.get(index)
        {
            return Ok((code, tail));
        }
    }
    // Too few digits to tell, as long as some assigned code could still follow.
    if digits.len() < 3 && CALLING_CODES.iter().any(|code| code.starts_with(digits)) {
        Err(PhoneError::TooShort)
    } else {
        Err(PhoneError::UnknownCallingCode)
    }
}

/// True when every country using `calling_code` has "0" as a trunk prefix.
fn trunk_prefix_is_zero(calling_code: &str) -> bool {
    let mut sharing = COUNTRIES
        .iter()
        .filter(|plan| plan.calling_code == calling_code)
        .peekable();
    sharing.peek().is_some() && sharing.all(|plan| plan.trunk_prefixes.contains(&"0"))
}

/// Drops the first listed trunk prefix the number starts with. A prefix is
/// never followed by 0 in a national number, so such a match is not taken.
fn strip_trunk_prefix<'a>(digits: &'a str, trunk_prefixes: &[&str]) -> &'a str {
    trunk_prefixes
        .iter()
        .filter_map(|prefix| digits.strip_prefix(prefix))
        .find(|rest| !rest.starts_with('0'))
        .unwrap_or(digits)
}

/// Checks the lengths and builds "+<cc><national>".
fn assemble(calling_code: &str, national: &str) -> Result<Phone, PhoneError> {
    check_lengths(calling_code, national)?;
    Ok(Phone(format!("+{calling_code}{national}")))
}

fn check_lengths(calling_code: &str, national: &str) -> Result<(), PhoneError> {
    if calling_code == NANP_CALLING_CODE {
        if national.len() < NANP_NATIONAL_DIGITS {
            return Err(PhoneError::TooShort);
        }
        if national.len() > NANP_NATIONAL_DIGITS {
            return Err(PhoneError::TooLong);
        }
    }
    let total = calling_code.len() + national.len();
    if total > MAX_DIGITS {
        return Err(PhoneError::TooLong);
    }
    if national.len() < MIN_NATIONAL_DIGITS || total < MIN_DIGITS {
        return Err(PhoneError::TooShort);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn country(code: &str) -> Country {
        match Country::parse(code) {
            Ok(country) => country,
            Err(error) => panic!("{code:?}: {error}"),
        }
    }

    fn phone(input: &str, default_country: Option<&str>) -> Phone {
        let default_country = default_country.map(country);
        match Phone::parse(input, default_country) {
            Ok(phone) => phone,
            Err(error) => panic!("{input:?} with default {default_country:?} failed: {error}"),
        }
    }

    fn e164(input: &str, default_country: Option<&str>) -> String {
        phone(input, default_country).as_str().to_string()
    }

    #[test]
    fn a_national_irish_number_and_its_international_forms_are_the_same_phone() {
        let national = phone("087 123 4567", Some("IE"));
        assert_eq!(national.as_str(), "+353871234567");
        for same in [
            "+353871234567",
            "+353 87 123 4567",
            "00353 87 123 4567",
            "(087) 123-4567",
        ] {
            assert_eq!(phone(same, Some("IE")), national, "{same:?}");
        }
        assert_eq!(phone("+353 87 123 4567", None), national);
        assert_eq!(phone("00353871234567", None), national);
    }

    #[test]
    fn international_numbers_ignore_the_default_country() {
        assert_eq!(e164("+353 87 123 4567", Some("GB")), "+353871234567");
        assert_eq!(e164("0033 6 12 34 56 78", Some("DE")), "+33612345678");
    }

    #[test]
    fn a_number_written_in_e164_reads_as_it_does_with_separators() {
        let cases = [
            ("+353871234567", "an Irish mobile"),
            ("+12025550123", "a North American number"),
            (" +447700900123\u{a0}", "with whitespace around it"),
            ("+1202555012", "+1 with nine digits"),
            ("+120255501234", "+1 with eleven digits"),
            ("+3531234", "too few digits in all"),
            ("+353123", "too few after the calling code"),
            ("+3538712345678901", "more than 15 digits"),
            ("+80012345678", "a calling code that is not assigned"),
            ("+35", "too few digits to tell the calling code"),
            ("+0353871234567", "a zero where the calling code starts"),
        ];
        for (compact, description) in cases {
            let trimmed = compact.trim();
            let spaced = format!("{} {}", &trimmed[..2], &trimmed[2..]);
            assert_eq!(
                Phone::parse(compact, None),
                Phone::parse(&spaced, None),
                "{description}: {compact:?} and {spaced:?}"
            );
        }
        assert_eq!(
            Phone::parse("+", None),
            Err(PhoneError::Empty),
            "a plus alone has no digits"
        );
    }

    #[test]
    fn a_british_mobile_loses_its_trunk_zero() {
        assert_eq!(e164("07700 900123", Some("GB")), "+447700900123");
        assert_eq!(e164("+44 7700 900123", None), "+447700900123");
    }

    #[test]
    fn a_bracketed_zero_after_the_calling_code_is_the_trunk_prefix() {
        assert_eq!(e164("+44 (0)20 7946 0958", None), "+442079460958");
        assert_eq!(e164("+49 (0) 30 1234567", None), "+49301234567");
        assert_eq!(e164("0049(0)30-1234567", None), "+49301234567");
    }

    #[test]
    fn a_bracketed_zero_is_kept_where_the_zero_belongs_to_the_number() {
        assert_eq!(e164("+39 (0)6 1234 5678", None), "+390612345678");
    }

    #[test]
    fn us_numbers_in_every_usual_spelling_are_the_same_phone() {
        for input in [
            "(415) 555-2671",
            "415.555.2671",
            "1-415-555-2671",
            "1 (415) 555-2671",
            "+1 415 555 2671",
            "+1 (415) 555-2671",
            "0014155552671",
            "011 1 415 555 2671",
        ] {
            assert_eq!(e164(input, Some("US")), "+14155552671", "{input:?}");
        }
    }

    #[test]
    fn the_us_international_access_prefix_011_reaches_other_countries() {
        assert_eq!(e164("011 44 20 7946 0958", Some("US")), "+442079460958");
        assert_eq!(e164("011 353 87 123 4567", Some("CA")), "+353871234567");
    }

    #[test]
    fn other_nanp_countries_share_the_plus_one_rules() {
        assert_eq!(e164("1 (876) 555-0123", Some("JM")), "+18765550123");
        assert_eq!(e164("416 555 0123", Some("CA")), "+14165550123");
    }

    #[test]
    fn the_011_prefix_is_only_international_for_nanp_countries() {
        // In Germany 011... is a national number (trunk 0, then 11...).
        assert_eq!(e164("011 4455 6677", Some("DE")), "+491144556677");
    }

    #[test]
    fn an_italian_number_keeps_its_leading_zero() {
        assert_eq!(e164("06 1234 5678", Some("IT")), "+390612345678");
        assert_eq!(e164("+39 06 1234 5678", None), "+390612345678");
        assert_eq!(e164("0039 06 1234 5678", Some("IE")), "+390612345678");
        assert_eq!(e164("347 123 4567", Some("IT")), "+393471234567");
        assert_eq!(e164("0549 123456", Some("SM")), "+3780549123456");
    }

    #[test]
    fn a_german_landline_loses_its_trunk_zero() {
        assert_eq!(e164("030 1234567", Some("DE")), "+49301234567");
        assert_eq!(e164("030/123 45 67", Some("DE")), "+49301234567");
    }

    #[test]
    fn a_french_mobile_loses_its_trunk_zero() {
        assert_eq!(e164("06 12 34 56 78", Some("FR")), "+33612345678");
        assert_eq!(e164("06.12.34.56.78", Some("FR")), "+33612345678");
        assert_eq!(
            e164("06\u{202F}12\u{202F}34\u{202F}56\u{202F}78", Some("FR")),
            "+33612345678"
        );
    }

    #[test]
    fn countries_without_a_trunk_prefix_keep_every_digit() {
        assert_eq!(e164("912 345 678", Some("ES")), "+34912345678");
        assert_eq!(e164("21 234 5678", Some("PT")), "+351212345678");
        assert_eq!(e164("32 12 34 56", Some("DK")), "+4532123456");
    }

    #[test]
    fn other_trunk_prefixes_are_stripped() {
        assert_eq!(e164("8 (495) 123-45-67", Some("RU")), "+74951234567");
        assert_eq!(e164("06 1 234 5678", Some("HU")), "+3612345678");
        assert_eq!(e164("8 029 123 45 67", Some("BY")), "+375291234567");
        assert_eq!(e164("8 017 123 45 67", Some("BY")), "+375171234567");
        assert_eq!(e164("8 612 34567", Some("LT")), "+37061234567");
        assert_eq!(e164("0 612 34567", Some("LT")), "+37061234567");
        assert_eq!(e164("0412 345 678", Some("AU")), "+61412345678");
        assert_eq!(e164("021 123 4567", Some("NZ")), "+64211234567");
        assert_eq!(e164("098765 43210", Some("IN")), "+919876543210");
        assert_eq!(e164("082 123 4567", Some("ZA")), "+27821234567");
    }

    #[test]
    fn a_trunk_prefix_followed_by_zero_is_not_stripped() {
        // Russian freephone 800 with and without the trunk 8: never "8" + "00...".
        assert_eq!(e164("8 800 123-45-67", Some("RU")), "+78001234567");
        assert_eq!(e164("800 123-45-67", Some("RU")), "+78001234567");
        assert_eq!(e164("800 12345", Some("LT")), "+37080012345");
    }

    #[test]
    fn territories_sharing_a_calling_code_use_it() {
        assert_eq!(e164("07781 123456", Some("JE")), "+447781123456");
        assert_eq!(e164("0692 12 34 56", Some("YT")), "+262692123456");
    }

    #[test]
    fn non_geographic_calling_codes_are_accepted() {
        assert_eq!(e164("+800 1234 5678", None), "+80012345678");
        assert_eq!(e164("+882 1234 5678", None), "+88212345678");
    }

    #[test]
    fn a_national_number_without_a_default_country_is_rejected() {
        assert_eq!(
            Phone::parse("087 123 4567", None),
            Err(PhoneError::MissingCountry)
        );
        assert_eq!(Phone::parse("4155552671", None), Err(PhoneError::MissingCountry));
        // 011 is only an international prefix when the default country is NANP.
        assert_eq!(
            Phone::parse("011 44 20 7946 0958", None),
            Err(PhoneError::MissingCountry)
        );
    }

    #[test]
    fn country_codes_are_case_insensitive() {
        assert_eq!(country("ie"), country("IE"));
        assert_eq!(country("Ie").code(), "IE");
        assert_eq!(country(" gb ").code(), "GB");
        assert_eq!(e164("087 123 4567", Some("ie")), "+353871234567");
    }

    #[test]
    fn a_country_knows_its_calling_code() {
        assert_eq!(country("IE").calling_code(), "353");
        assert_eq!(country("US").calling_code(), "1");
        assert_eq!(country("KZ").calling_code(), "7");
        assert_eq!(country("VA").calling_code(), "39");
    }

    #[test]
    fn unknown_or_malformed_country_codes_are_rejected() {
        for (code, why) in [
            ("ZZ", "unassigned ISO code"),
            ("USA", "alpha-3 instead of alpha-2"),
            ("", "empty"),
            ("U", "one letter"),
            ("I E", "space inside"),
            ("353", "calling code instead of country code"),
            ("UK", "not the ISO code for the United Kingdom"),
            ("ÍE", "non-ASCII letter"),
        ] {
            assert_eq!(
                Country::parse(code),
                Err(PhoneError::UnknownCountry(code.to_string())),
                "{why}: {code:?}"
            );
        }
    }

    #[test]
    fn bad_inputs_are_rejected_with_the_reason() {
        use PhoneError::*;
        let cases: &[(&str, Option<&str>, PhoneError, &str)] = &[
            ("", Some("IE"), Empty, "empty input"),
            ("   \u{00A0} ", Some("IE"), Empty, "only whitespace"),
            ("+", Some("IE"), Empty, "a plus and nothing else"),
            ("( ) - /", Some("IE"), Empty, "only separators"),
            (
                "087 123 4567 x123",
                Some("IE"),
                InvalidCharacter('x'),
                "extension with x",
            ),
            (
                "087 123 4567 ext. 5",
                Some("IE"),
                InvalidCharacter('e'),
                "extension with ext.",
            ),
            ("call me", Some("IE"), InvalidCharacter('c'), "letters"),
            (
                "087 CALL NOW",
                Some("IE"),
                InvalidCharacter('C'),
                "vanity letters",
            ),
            ("++353 87 123 4567", None, InvalidCharacter('+'), "two plus signs"),
            (
                "353+87 123 4567",
                None,
                InvalidCharacter('+'),
                "plus in the middle",
            ),
            ("087\t123 4567", Some("IE"), InvalidCharacter('\t'), "tab inside"),
            ("087_123_4567", Some("IE"), InvalidCharacter('_'), "underscore"),
            ("087–123–4567", Some("IE"), InvalidCharacter('–'), "en dash"),
            (
                "０８７１２３４５６７",
                Some("IE"),
                InvalidCharacter('０'),
                "full-width digits",
            ),
            ("+353 87 123 4567 8901", None, TooLong, "16 digits"),
            ("+44 20 7946 0958 12345", None, TooLong, "17 digits"),
            ("0044 20 7946 0958 12345", None, TooLong, "17 digits after 00"),
            ("+1 415 555 26710", None, TooLong, "11 digits after +1"),
            ("1 415 555 26710", Some("US"), TooLong, "12 national NANP digits"),
            ("+1 415 555 267", None, TooShort, "9 digits after +1"),
            ("555 2671", Some("US"), TooShort, "US number without area code"),
            ("1415555267", Some("US"), TooShort, "trunk 1 plus only 9 digits"),
            ("+353 871", None, TooShort, "3 digits after the calling code"),
            ("+44 1234", None, TooShort, "6 digits in total"),
            (
                "0871",
                Some("IE"),
                TooShort,
                "national number with 3 digits after the trunk 0",
            ),
            ("0", Some("IE"), TooShort, "only the trunk prefix"),
            ("00", Some("IE"), TooShort, "only the international prefix"),
            ("+3", None, TooShort, "calling code cut short"),
            ("+35", None, TooShort, "three-digit calling code cut short"),
            ("+28 123 456 789", None, UnknownCallingCode, "+28 is unassigned"),
            ("+210 123 4567", None, UnknownCallingCode, "+210 is unassigned"),
            (
                "+259 123 4567",
                None,
                UnknownCallingCode,
                "+259 was never brought into use",
            ),
            (
                "+80 1234 5678",
                None,
                UnknownCallingCode,
                "+80 is not a code, only +800/+808",
            ),
            (
                "+0 87 123 4567",
                None,
                UnknownCallingCode,
                "no calling code starts with 0",
            ),
            (
                "000 353 87 123 4567",
                Some("IE"),
                UnknownCallingCode,
                "three zeros",
            ),
        ];
        for (input, default_country, expected, why) in cases {
            let default_country = default_country.map(country);
            assert_eq!(
                Phone::parse(input, default_country).as_ref(),
                Err(expected),
                "{why}: {input:?} with default {default_country:?}"
            );
        }
    }

    #[test]
    fn an_e164_number_at_the_length_limits_is_accepted() {
        assert_eq!(e164("+353 12 345 678 901 2", None), "+353123456789012");
        assert_eq!(e164("+44 123 456", None), "+44123456");
    }

    #[test]
    fn phones_display_and_serialize_as_their_e164_string() {
        let irish = phone("087 123 4567", Some("IE"));
        assert_eq!(irish.to_string(), "+353871234567");
        assert_eq!(
            serde_json::to_string(&irish).map_err(|error| error.to_string()),
            Ok("\"+353871234567\"".to_string())
        );
    }

    #[test]
    fn error_messages_are_readable_without_the_input() {
        assert_eq!(
            PhoneError::MissingCountry.to_string(),
            "phone number has no country code and no default country is configured; send it as +<country code><number> or set default_country"
        );
        assert_eq!(
            PhoneError::InvalidCharacter('x').to_string(),
            "phone number contains 'x'; only digits, one leading '+' and the separators space - . / ( ) are allowed"
        );
        assert!(
            PhoneError::UnknownCountry("ZZ".into())
                .to_string()
                .contains("\"ZZ\"")
        );
        let error: Box<dyn std::error::Error> = Box::new(PhoneError::TooLong);
        assert!(error.to_string().contains("15 digits"));
    }

    #[test]
    fn the_country_table_is_sorted_unique_and_upper_case() {
        for pair in COUNTRIES.windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{} before {}",
                pair[0].code,
                pair[1].code
            );
        }
        for plan in COUNTRIES {
            assert!(
                plan.code.len() == 2 && plan.code.bytes().all(|b| b.is_ascii_uppercase()),
                "{}",
                plan.code
            );
            assert_eq!(country(plan.code).code(), plan.code);
        }
        assert!(COUNTRIES.len() >= 240, "{} countries", COUNTRIES.len());
    }

    #[test]
    fn every_country_uses_an_assigned_calling_code() {
        for plan in COUNTRIES {
            assert!(
                CALLING_CODES.contains(&plan.calling_code),
                "{} uses unlisted calling code {}",
                plan.code,
                plan.calling_code
            );
            for prefix in plan.trunk_prefixes {
                assert!(
                    !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()),
                    "{} trunk prefix {prefix:?}",
                    plan.code
                );
            }
        }
    }

    #[test]
    fn calling_codes_are_sorted_and_none_is_the_start_of_another() {
        for pair in CALLING_CODES.windows(2) {
            assert!(pair[0] < pair[1], "{} before {}", pair[0], pair[1]);
        }
        for code in CALLING_CODES {
            assert!(
                (1..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()),
                "{code}"
            );
            for other in CALLING_CODES {
                assert!(
                    code == other || !other.starts_with(code),
                    "{code} is a prefix of {other}"
                );
            }
        }
    }

    #[test]
    fn nanp_countries_all_use_trunk_prefix_one() {
        let nanp: Vec<&str> = COUNTRIES
            .iter()
            .filter(|plan| plan.calling_code == "1")
            .map(|plan| plan.code)
            .collect();
        assert_eq!(nanp.len(), 25, "{nanp:?}");
        for code in nanp {
            assert_eq!(country(code).plan.trunk_prefixes, &["1"], "{code}");
        }
    }
}
