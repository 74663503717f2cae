//! Outbound webhook signing: the exact body bytes a JavaScript receiver re-serialises, endpoint
//! secrets, and the two signature headers (the seed receiver's `X-Webhook-Signature` and Standard
//! Webhooks' `webhook-signature`).
//!
//! The seed receiver verifies `JSON.stringify(req.body)` after `express.json()` parsed it, not the
//! bytes on the wire, so the body we sign must already be a fixed point of
//! `JSON.stringify(JSON.parse(...))` in a JS runtime. [`to_js_json`] produces exactly that.

use crate::crypto::{constant_time_eq, hmac_sha256};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Number, Value};

/// The bytes `JSON.stringify(JSON.parse(...))` would produce for this value in a JS runtime.
///
/// JS rules followed: object keys that are array indices (canonical decimal strings below
/// 2^32 − 1) come first in ascending numeric order, the other keys follow in the map's order
/// (sorted, as `serde_json::Map` is a `BTreeMap`; a JS runtime keeps that order when it parses
/// our output); numbers are printed as JS prints an f64 (`Number::toString`); strings escape only
/// `"`, `\` and U+0000–U+001F; no whitespace.
pub fn to_js_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => out.push_str(&js_number_of(number)),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut indexed: Vec<(u32, &String, &Value)> = Vec::new();
            let mut named: Vec<(&String, &Value)> = Vec::new();
            for (key, item) in map {
                match array_index(key) {
                    Some(index) => indexed.push((index, key, item)),
                    None => named.push((key, item)),
                }
            }
            indexed.sort_by_key(|(index, _, _)| *index);
            let members = indexed.into_iter().map(|(_, key, item)| (key, item)).chain(named);
            out.push('{');
            for (position, (key, item)) in members.enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// The numeric value of `key` when it is an ECMAScript array index: the canonical decimal form
/// (no sign, no leading zero except "0") of an integer below 2^32 − 1.
fn array_index(key: &str) -> Option<u32> {
    let canonical = !key.is_empty()
        && key.bytes().all(|byte| byte.is_ascii_digit())
        && (key == "0" || !key.starts_with('0'));
    if !canonical {
        return None;
    }
    let index: u32 = key.parse().ok()?;
    (index < u32::MAX).then_some(index)
}

/// A JSON number as JS sees it: every number is an f64, so integers beyond 2^53 round.
fn js_number_of(number: &Number) -> String {
    match number.as_f64() {
        Some(value) => js_number(value),
        // Only reachable with serde_json's `arbitrary_precision`, which this crate does not enable.
        None => number.to_string(),
    }
}

/// ECMAScript `Number::toString(10)` of `value`, as `JSON.stringify` writes it (non-finite
/// numbers become `null`).
fn js_number(value: f64) -> String {
    if !value.is_finite() {
        return "null".to_owned();
    }
    if value == 0.0 {
        // Both +0 and -0.
        return "0".to_owned();
    }
    if value < 0.0 {
        return format!("-{}", js_number(-value));
    }
    let Some((digits, exponent)) = shortest_digits(value) else {
        return value.to_string();
    };
    // The spec's k (number of digits) and n (position of the decimal point): value = 0.digits × 10^n.
    let k = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let n = exponent + 1;
    if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat(usize::try_from(n - k).unwrap_or(0)))
    } else if 0 < n && n <= 21 {
        let (integer, fraction) = digits.split_at(usize::try_from(n).unwrap_or(0));
        format!("{integer}.{fraction}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat(usize::try_from(-n).unwrap_or(0)))
    } else {
        let sign = if n - 1 < 0 { '-' } else { '+' };
        let magnitude = (n - 1).unsigned_abs();
        let (first, rest) = digits.split_at(1);
        if rest.is_empty() {
            format!("{first}e{sign}{magnitude}")
        } else {
            format!("{first}.{rest}e{sign}{magnitude}")
        }
    }
}

/// The digits and decimal exponent of the shortest decimal that reads back as `value` (positive,
/// finite), as `Number::toString` picks them: of several shortest candidates the one closest to
/// `value`, and of two equally close the even one. Rust's `{:e}` gives a shortest, closest
/// candidate but does not promise the even one on a tie, so ties are settled here.
fn shortest_digits(value: f64) -> Option<(String, i32)> {
    let (digits, exponent) = split_scientific(&format!("{value:e}"))?;
    // Cheap filter first: the correctly rounded (k+1)-digit form of a tie ends in 5.
    let rounded_ends_in_5 = || {
        format!("{value:.*e}", digits.len())
            .split_once('e')
            .is_some_and(|(m, _)| m.ends_with('5'))
    };
    if digits.ends_with(['1', '3', '5', '7', '9']) && rounded_ends_in_5() {
        // A tie means `value` lies exactly halfway between two k-digit decimals: its exact
        // expansion (at most 767 significant digits) is k digits followed by a single 5.
        let (exact, exact_exponent) = split_scientific(&format!("{value:.800e}"))?;
        let exact = exact.trim_end_matches('0');
        if exact_exponent == exponent && exact.len() == digits.len() + 1 && exact.ends_with('5') {
            let below = &exact[..digits.len()];
            let other = if below == digits {
                increment(below)
            } else {
                below.to_owned()
            };
            let reads_back = || {
                let (first, rest) = other.split_at(1);
                format!("{first}.{rest}e{exponent}")
                    .parse::<f64>()
                    .is_ok_and(|read| read == value)
            };
            if other.len() == digits.len() && other.ends_with(['0', '2', '4', '6', '8']) && reads_back() {
                return Some((other, exponent));
            }
        }
    }
    Some((digits, exponent))
}

/// The significant digits and exponent of Rust's scientific notation "d.ddde-7".
fn split_scientific(scientific: &str) -> Option<(String, i32)> {
    let (mantissa, exponent) = scientific.split_once('e')?;
    let digits = mantissa.chars().filter(|c| *c != '.').collect();
    Some((digits, exponent.parse().ok()?))
}

/// A decimal digit string plus one in its last place ("129" → "130", "99" → "100").
fn increment(digits: &str) -> String {
    let mut bytes = digits.as_bytes().to_vec();
    for byte in bytes.iter_mut().rev() {
        if *byte == b'9' {
            *byte = b'0';
        } else {
            *byte += 1;
            return String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    format!("1{}", String::from_utf8_lossy(&bytes))
}

/// A JSON string as `JSON.stringify` writes it: `"` and `\` escaped, U+0000–U+001F as the short
/// escapes or `\u00xx` (lowercase hex), everything else (`/`, non-ASCII, U+2028/2029) raw.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

const SECRET_PREFIX: &str = "whsec_";
const MIN_KEY_BYTES: usize = 16;
const MAX_KEY_BYTES: usize = 64;

/// A webhook endpoint secret: "whsec_" + base64 (standard, padded) of 24 random bytes, as
/// Standard Webhooks libraries expect.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("WebhookSecret(whsec_…)")
    }
}

impl WebhookSecret {
    /// A new secret from 24 bytes of the caller's randomness.
    pub fn generate(random: [u8; 24]) -> Self {
        Self(format!("{SECRET_PREFIX}{}", STANDARD.encode(random)))
    }

    /// A secret as stored or given back by a user: "whsec_" + valid padded standard base64 of
    /// 16..=64 bytes.
    pub fn parse(text: &str) -> Option<Self> {
        let encoded = text.strip_prefix(SECRET_PREFIX)?;
        let key = STANDARD.decode(encoded).ok()?;
        (MIN_KEY_BYTES..=MAX_KEY_BYTES)
            .contains(&key.len())
            .then(|| Self(text.to_owned()))
    }

    /// The whole text, "whsec_…", as shown to the user.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The decoded bytes after "whsec_": the Standard Webhooks HMAC key.
    fn key(&self) -> Vec<u8> {
        // `generate` and `parse` only build secrets whose tail decodes.
        let encoded = self.0.strip_prefix(SECRET_PREFIX).unwrap_or_default();
        STANDARD.decode(encoded).unwrap_or_default()
    }
}

/// The headers of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `webhook-id`.
    pub webhook_id: String,
    /// Unix seconds: `webhook-timestamp` and `X-Webhook-Timestamp`.
    pub timestamp: i64,
    /// `X-Webhook-Signature`: lowercase hex HMAC-SHA256, keyed with the whole text of one
    /// secret, of "{timestamp}.{body}".
    pub x_webhook_signature: String,
    /// `webhook-signature`: "v1,<base64 HMAC-SHA256>" per secret, space-separated, keyed with the
    /// decoded secret, of "{webhook_id}.{timestamp}.{body}".
    pub webhook_signature: String,
}

/// Whether the seed header of attempt `attempt` is signed with the previous secret during a
/// rotation's grace period. The seed header carries one signature, and a seed receiver checks
/// it against the one secret it holds, which is the old one until its owner deploys the new
/// one. So until a delivery signed with the new secret has been accepted (`confirmed`), odd
/// attempts (every first attempt) are signed with the previous secret and even ones (every
/// first retry) with the new one: a receiver on either secret accepts a delivery at its first
/// or second attempt, and its first acceptance of the new secret confirms it for good.
pub fn seed_signs_with_previous(confirmed: bool, attempt: u32) -> bool {
    !confirmed && attempt % 2 == 1
}

/// Signs one delivery of `body` (already the output of [`to_js_json`]): the seed header with
/// `seed_secret`, Standard Webhooks' with every one of `secrets` (the current one first, then
/// any still in their grace period).
pub fn sign(
    seed_secret: &WebhookSecret,
    secrets: &[&WebhookSecret],
    webhook_id: &str,
    timestamp: i64,
    body: &str,
) -> SignedHeaders {
    let timestamp_text = timestamp.to_string();
    let x_webhook_signature = hex::encode(seed_mac(seed_secret.as_str(), &timestamp_text, body));
    let webhook_signature = secrets
        .iter()
        .map(|secret| {
            let mac = standard_mac(&secret.key(), webhook_id, &timestamp_text, body);
            format!("v1,{}", STANDARD.encode(mac))
        })
        .collect::<Vec<_>>()
        .join(" ");
    SignedHeaders {
        webhook_id: webhook_id.to_owned(),
        timestamp,
        x_webhook_signature,
        webhook_signature,
    }
}

/// True when `signature_hex` is the seed receiver's signature of "{timestamp}.{body}" under the
/// secret text `secret`. Constant-time compare.
pub fn verify_seed(secret: &str, timestamp: &str, body: &str, signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    constant_time_eq(&seed_mac(secret, timestamp, body), &signature)
}

/// Signatures one `webhook-signature` header may carry: a sender signs with its current secret
/// and, while it rotates, its last ones; a header of thousands is an attack on our CPU.
pub const MAX_STANDARD_SIGNATURES: usize = 8;

/// True when one of the first [`MAX_STANDARD_SIGNATURES`] "v1,<base64>" entries of the
/// space-separated `header` is the Standard Webhooks signature of "{webhook_id}.{timestamp}.{body}"
/// under `secret`. The MAC is computed once, whatever the header holds; constant-time compares.
pub fn verify_standard(
    secret: &WebhookSecret,
    webhook_id: &str,
    timestamp: &str,
    body: &str,
    header: &str,
) -> bool {
    let expected = standard_mac(&secret.key(), webhook_id, timestamp, body);
    header
        .split(' ')
        .filter(|entry| !entry.is_empty())
        .take(MAX_STANDARD_SIGNATURES)
        .any(|entry| {
            let Some(("v1", encoded)) = entry.split_once(',') else {
                return false;
            };
            STANDARD
                .decode(encoded)
                .is_ok_and(|signature| constant_time_eq(&expected, &signature))
        })
}

fn seed_mac(secret: &str, timestamp: &str, body: &str) -> [u8; 32] {
    hmac_sha256(secret.as_bytes(), &[timestamp.as_bytes(), b".", body.as_bytes()])
}

fn standard_mac(key: &[u8], webhook_id: &str, timestamp: &str, body: &str) -> [u8; 32] {
    hmac_sha256(
        key,
        &[
            webhook_id.as_bytes(),
            b".",
            timestamp.as_bytes(),
            b".",
            body.as_bytes(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(json: &str) -> Value {
        match serde_json::from_str(json) {
            Ok(value) => value,
            Err(error) => panic!("test input {json:?} is not JSON: {error}"),
        }
    }

    /// Expectations are Node 20's `JSON.stringify(JSON.parse(input))`, obtained with
    /// `node -e 'const s=process.argv[1]; console.log(JSON.stringify(JSON.parse(s)))' '<input>'`.
    #[test]
    fn to_js_json_prints_what_node_re_serialises() {
        let cases: &[(&str, &str, &str)] = &[
            (
                // Node keeps the other keys in insertion order (b, a, 01, 4294967295, -1); serde_json's
                // BTreeMap has already sorted them, so the expectation is Node's output for the keys
                // in that order, which Node also leaves unchanged when it re-serialises ours.
                "integer-like keys come first in numeric order, other keys keep their (map) order",
                "{\"b\":1,\"10\":2,\"2\":3,\"a\":4,\"01\":5,\"4294967295\":6,\"-1\":7}",
                "{\"2\":3,\"10\":2,\"-1\":7,\"01\":5,\"4294967295\":6,\"a\":4,\"b\":1}",
            ),
            (
                "only canonical indices below 2^32-1 count as integer-like",
                "{\" 1\":7,\"+1\":6,\"00\":9,\"1.5\":5,\"1e3\":8,\"4294967295\":3,\"x\":1,\"4294967294\":2,\"0\":4}",
                "{\"0\":4,\"4294967294\":2,\" 1\":7,\"+1\":6,\"00\":9,\"1.5\":5,\"1e3\":8,\"4294967295\":3,\"x\":1}",
            ),
            (
                "nested objects and arrays keep their structure without whitespace",
                "{ \"a\" : [ 1 , { \"3\" : [ ] , \"1\" : { \"z\" : null } } , [ [ true , false ] ] ] , \"b\" : { \"c\" : \"d\" } }",
                "{\"a\":[1,{\"1\":{\"z\":null},\"3\":[]},[[true,false]]],\"b\":{\"c\":\"d\"}}",
            ),
            ("a float with a zero fraction prints as an integer", "1.0", "1"),
            ("a plain fraction", "1.5", "1.5"),
            (
                "1e21 switches to exponent notation with an explicit plus",
                "1e21",
                "1e+21",
            ),
            ("1e20 still prints in full", "1e20", "100000000000000000000"),
            ("1e-7 switches to exponent notation", "1e-7", "1e-7"),
            ("1e-6 still prints as a decimal", "0.000001", "0.000001"),
            ("1.2e-6 prints as a decimal", "1.2e-6", "0.0000012"),
            (
                // Written in exponent form: serde_json misreads the 21-digit integer form (see
                // `serde_json_reads_some_long_numbers_one_ulp_away_from_js`).
                "a large float below 1e21 prints all its digits",
                "1.2345678901234568e20",
                "123456789012345680000",
            ),
            (
                "0.1 + 0.2 keeps its shortest round-trip digits",
                "0.30000000000000004",
                "0.30000000000000004",
            ),
            ("minus zero prints as 0", "-0.0", "0"),
            ("the smallest subnormal", "5e-324", "5e-324"),
            (
                "the largest double",
                "1.7976931348623157e308",
                "1.7976931348623157e+308",
            ),
            (
                "a mantissa with digits and a negative exponent",
                "123e-20",
                "1.23e-18",
            ),
            (
                "a tie between two shortest candidates picks the even one",
                "-127980387174598.125",
                "-127980387174598.12",
            ),
            (
                "a tie in the fourth decimal picks the even one",
                "34115503950747.062",
                "34115503950747.062",
            ),
            (
                "a tie above 2^50 picks the even one",
                "1703094200366581.2",
                "1703094200366581.2",
            ),
            ("a negative fraction", "-4.35", "-4.35"),
            (
                "a u64 beyond 2^53 loses precision like a JS number",
                "12345678901234567890",
                "12345678901234567000",
            ),
            (
                "u64::MAX rounds to 2^64",
                "18446744073709551615",
                "18446744073709552000",
            ),
            (
                "an odd negative integer beyond 2^53 rounds to even",
                "-9007199254740993",
                "-9007199254740992",
            ),
            ("i64::MIN", "-9223372036854775808", "-9223372036854776000"),
            ("a small integer", "-5", "-5"),
            (
                "every control character is escaped, DEL is not",
                "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\u{7f}\"",
                "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\u{7f}\"",
            ),
            (
                "quotes, backslashes and slashes: only the first two are escaped",
                "\"say \\\"hi\\\" \\\\ path\\/to/x\"",
                "\"say \\\"hi\\\" \\\\ path/to/x\"",
            ),
            (
                "emoji, non-BMP, U+2028/2029 and other non-ASCII stay raw",
                "\"\u{1f600} \u{1d11e} \\u2028 \\u2029 \u{e9} \u{fc} \u{4e2d} \\ud83d\\ude00\"",
                "\"\u{1f600} \u{1d11e} \u{2028} \u{2029} \u{e9} \u{fc} \u{4e2d} \u{1f600}\"",
            ),
            (
                "empty containers and strings",
                "{\"a\":[],\"b\":{},\"c\":\"\",\"d\":[{}]}",
                "{\"a\":[],\"b\":{},\"c\":\"\",\"d\":[{}]}",
            ),
            (
                "unicode keys are escaped like strings and ordered after index keys",
                "{\"\\n\":0,\"z\":3,\"\u{e9}\":1,\"\\u2028\":4,\"\u{1f600}\":2,\"7\":5}",
                "{\"7\":5,\"\\n\":0,\"z\":3,\"\u{e9}\":1,\"\u{2028}\":4,\"\u{1f600}\":2}",
            ),
            ("top-level literals", "[null,true,false]", "[null,true,false]"),
        ];
        for (description, input, expected) in cases {
            assert_eq!(to_js_json(&parsed(input)), *expected, "{description}");
        }
    }

    /// serde_json without its `float_roundtrip` feature may read a number one ULP away from the
    /// nearest double, which JS picks (even for exactly representable inputs). The value we hold
    /// then differs from the sender's, and we print the double we hold exactly as JS prints that
    /// double (Node prints the bits 0x441ac53a7e04bcd9 as `123456789012345670000`), so the signed
    /// body is still one Node re-serialises unchanged. Columns: description, input, what we print
    /// for serde_json's reading, what Node prints for the input (and we for the exact reading).
    #[test]
    fn serde_json_reads_some_numbers_one_ulp_away_from_js() {
        let cases = [
            (
                "a 21-digit integer",
                "123456789012345680000",
                "123456789012345670000",
                "123456789012345680000",
            ),
            (
                "a 17-digit mantissa",
                "-1.7756801181717152e+244",
                "-1.775680118171715e+244",
                "-1.7756801181717152e+244",
            ),
            (
                "an exactly representable tie",
                "34115503950747.0625",
                "34115503950747.066",
                "34115503950747.062",
            ),
            (
                "another exact tie",
                "1703094200366581.25",
                "1703094200366581",
                "1703094200366581.2",
            ),
        ];
        for (description, input, printed, node) in cases {
            assert_eq!(to_js_json(&parsed(input)), printed, "{description}");
            let exact: f64 = input.parse().unwrap_or(f64::NAN);
            assert_eq!(js_number(exact), node, "{description}, read exactly");
        }
    }

    #[test]
    fn non_finite_numbers_would_print_as_null() {
        let cases = [
            ("NaN", f64::NAN),
            ("+Infinity", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
        ];
        for (description, value) in cases {
            assert_eq!(js_number(value), "null", "{description}");
        }
    }

    /// Equality as a JS program sees it: every number is an f64.
    fn js_equal(left: &Value, right: &Value) -> bool {
        match (left, right) {
            // serde_json's default float reading can land one ULP away; `js_number`'s digits are
            // checked against Rust's correctly rounded parser in the next test.
            (Value::Number(left), Value::Number(right)) => match (left.as_f64(), right.as_f64()) {
                (Some(left), Some(right)) => {
                    left == right || left.next_up() == right || left.next_down() == right
                }
                _ => false,
            },
            (Value::Array(left), Value::Array(right)) => {
                left.len() == right.len() && left.iter().zip(right).all(|(l, r)| js_equal(l, r))
            }
            (Value::Object(left), Value::Object(right)) => {
                left.len() == right.len()
                    && left
                        .iter()
                        .all(|(key, l)| right.get(key).is_some_and(|r| js_equal(l, r)))
            }
            _ => left == right,
        }
    }

    /// A small deterministic generator (xorshift64*), so failures reproduce.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }

        fn finite_f64(&mut self) -> f64 {
            loop {
                let value = f64::from_bits(self.next());
                if value.is_finite() {
                    return value;
                }
            }
        }

        fn text(&mut self) -> String {
            const ALPHABET: &[char] = &[
                'a', 'Z', '0', '7', '"', '\\', '/', '\u{0}', '\u{1f}', '\n', '\u{7f}', 'é', '\u{2028}', '😀',
            ];
            let length = self.below(6);
            (0..length)
                .map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize])
                .collect()
        }

        fn key(&mut self) -> String {
            match self.below(4) {
                0 => self.below(20).to_string(),
                1 => (u64::from(u32::MAX) - self.below(3)).to_string(),
                2 => format!("0{}", self.below(10)),
                _ => self.text(),
            }
        }

        fn value(&mut self, depth: u32) -> Value {
            let kinds = if depth == 0 { 6 } else { 8 };
            match self.below(kinds) {
                0 => Value::Null,
                1 => Value::Bool(self.below(2) == 0),
                2 => Value::from(self.next() as i64 >> self.below(64)),
                3 => Value::from(self.finite_f64()),
                4 => Value::from((self.below(2_000_000) as f64 - 1_000_000.0) / 1000.0),
                5 => Value::String(self.text()),
                6 => Value::Array((0..self.below(4)).map(|_| self.value(depth - 1)).collect()),
                _ => Value::Object(
                    (0..self.below(5))
                        .map(|_| (self.key(), self.value(depth - 1)))
                        .collect(),
                ),
            }
        }
    }

    #[test]
    fn the_output_parses_back_to_the_same_js_value() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        let mut values = vec![
            parsed(r#"{"b":1,"10":2,"2":3,"a":4,"01":5,"4294967295":6,"-1":7}"#),
            parsed("[0.1, -0.0, 5e-324, 1.7976931348623157e308, 9007199254740992, -9007199254740992]"),
            parsed(r#"{"k": "\u0000\u001f\"\\/\u2028😀", "nested": {"0": [[], {}], "x": null}}"#),
        ];
        values.extend((0..2000).map(|_| random.value(3)));
        for value in &values {
            let printed = to_js_json(value);
            let reparsed = parsed(&printed);
            assert!(
                js_equal(value, &reparsed),
                "{value:?} printed as {printed} reads back as {reparsed:?}"
            );
        }
    }

    #[test]
    fn every_printed_number_reads_back_as_the_same_f64() {
        let mut random = Random(0x0123_4567_89ab_cdef);
        for _ in 0..100_000 {
            let value = random.finite_f64();
            let printed = js_number(value);
            let reread: f64 = match printed.parse() {
                Ok(reread) => reread,
                Err(error) => panic!("{value:e} printed as unparseable {printed}: {error}"),
            };
            // -0 prints as "0", which is fine: JSON.stringify does the same.
            assert!(reread == value, "{value:e} printed as {printed}");
        }
    }

    fn secret(bytes: &[u8]) -> WebhookSecret {
        match WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode(bytes))) {
            Some(secret) => secret,
            None => panic!("{} bytes do not make a secret", bytes.len()),
        }
    }

    fn current_secret() -> WebhookSecret {
        WebhookSecret::generate(std::array::from_fn(|i| (i * 7 + 3) as u8))
    }

    fn previous_secret() -> WebhookSecret {
        secret(&std::array::from_fn::<u8, 32, _>(|i| (255 - i * 5) as u8))
    }

    /// The vector was computed in Node 20:
    /// ```text
    /// node -e '
    /// const c = require("crypto");
    /// const raw = Buffer.from(Array.from({length: 24}, (_, i) => i * 7 + 3));
    /// const raw2 = Buffer.from(Array.from({length: 32}, (_, i) => 255 - i * 5));
    /// const secret = "whsec_" + raw.toString("base64");
    /// const body = JSON.stringify({data: {custom_fields: {"10": 1, "2": 0.30000000000000004},
    ///   id: "msg_1", text: "héllo \u2028 \"x\""}, type: "message.received"});
    /// const ts = "1700000000", id = "wh_01HZX";
    /// console.log(secret, body);
    /// console.log(c.createHmac("sha256", secret).update(`${ts}.${body}`).digest("hex"));
    /// console.log(c.createHmac("sha256", raw).update(`${id}.${ts}.${body}`).digest("base64"));
    /// console.log(c.createHmac("sha256", raw2).update(`${id}.${ts}.${body}`).digest("base64"));'
    /// ```
    const BODY: &str = "{\"data\":{\"custom_fields\":{\"2\":0.30000000000000004,\"10\":1},\"id\":\"msg_1\",\
                        \"text\":\"h\u{e9}llo \u{2028} \\\"x\\\"\"},\"type\":\"message.received\"}";
    const WEBHOOK_ID: &str = "wh_01HZX";
    const TIMESTAMP: i64 = 1_700_000_000;
    const SEED_SIGNATURE: &str = "ba3f3d3316b4d3e6bc4a8d386d156c877aae29530b985f363eedb6bd5cf9d4ee";
    const CURRENT_V1: &str = "v1,+5XOYpiaJ6wQCgfbs7ENoEjMAyIX2ZUYPAH744qBe6E=";
    const PREVIOUS_V1: &str = "v1,C8Q9cuCg6yRo2nDEJD7JbadIwztX0OPdHoG4qSENJa4=";

    #[test]
    fn the_vector_body_is_what_to_js_json_prints_for_it() {
        assert_eq!(to_js_json(&parsed(BODY)), BODY);
    }

    #[test]
    fn a_generated_secret_is_whsec_and_padded_base64_of_the_random_bytes() {
        assert_eq!(
            current_secret().as_str(),
            "whsec_AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2k"
        );
        assert_eq!(
            WebhookSecret::generate([0; 24]).as_str(),
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        );
        assert_eq!(
            current_secret().key(),
            (0..24).map(|i| (i * 7 + 3) as u8).collect::<Vec<_>>()
        );
    }

    #[test]
    fn signing_with_one_secret_matches_node() {
        let current = current_secret();
        let headers = sign(&current, &[&current], WEBHOOK_ID, TIMESTAMP, BODY);
        assert_eq!(
            headers,
            SignedHeaders {
                webhook_id: WEBHOOK_ID.to_owned(),
                timestamp: TIMESTAMP,
                x_webhook_signature: SEED_SIGNATURE.to_owned(),
                webhook_signature: CURRENT_V1.to_owned(),
            }
        );
    }

    #[test]
    fn during_rotation_every_secret_signs_the_standard_header_and_the_chosen_one_the_seed_header() {
        let (current, previous) = (current_secret(), previous_secret());
        for (seed_secret, other) in [(&current, &previous), (&previous, &current)] {
            let headers = sign(seed_secret, &[&current, &previous], WEBHOOK_ID, TIMESTAMP, BODY);
            assert_eq!(headers.webhook_signature, format!("{CURRENT_V1} {PREVIOUS_V1}"));
            for secret in [&current, &previous] {
                assert!(verify_standard(
                    secret,
                    WEBHOOK_ID,
                    "1700000000",
                    BODY,
                    &headers.webhook_signature
                ));
            }
            let verifies = |secret: &WebhookSecret| {
                verify_seed(secret.as_str(), "1700000000", BODY, &headers.x_webhook_signature)
            };
            assert!(verifies(seed_secret));
            assert!(!verifies(other));
        }
    }

    #[test]
    fn until_the_new_secret_is_confirmed_first_attempts_sign_the_seed_header_with_the_old_one() {
        let chosen: Vec<bool> = (1..=4)
            .map(|attempt| seed_signs_with_previous(false, attempt))
            .collect();
        assert_eq!(chosen, [true, false, true, false]);
        assert!((1..=4).all(|attempt| !seed_signs_with_previous(true, attempt)));
    }

    /// The example of the Standard Webhooks specification, recomputed in Node with
    /// `crypto.createHmac("sha256", Buffer.from("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "base64"))
    /// .update('msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}').digest("base64")`.
    #[test]
    fn the_standard_webhooks_specification_example_signs_and_verifies() {
        let Some(secret) = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") else {
            panic!("the specification's secret does not parse");
        };
        let (id, body) = ("msg_p5jXN8AQM9LWM0D4loKWxJek", r#"{"test": 2432232314}"#);
        let expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(
            sign(&secret, &[&secret], id, 1_614_265_330, body).webhook_signature,
            expected
        );
        assert!(verify_standard(
            &secret,
            id,
            "1614265330",
            body,
            &format!("v0,abc {expected}")
        ));
    }

    #[test]
    fn verification_fails_when_anything_signed_differs() {
        let (current, other) = (current_secret(), previous_secret());
        let headers = sign(&current, &[&current], WEBHOOK_ID, TIMESTAMP, BODY);
        let tampered_body = BODY.replace("msg_1", "msg_2");
        let seed_cases: &[(&str, &str, &str, &str, &str)] = &[
            (
                "the wrong secret",
                other.as_str(),
                "1700000000",
                BODY,
                SEED_SIGNATURE,
            ),
            (
                "the decoded key instead of the secret text",
                "AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2k",
                "1700000000",
                BODY,
                SEED_SIGNATURE,
            ),
            (
                "a tampered body",
                current.as_str(),
                "1700000000",
                &tampered_body,
                SEED_SIGNATURE,
            ),
            (
                "another timestamp",
                current.as_str(),
                "1700000001",
                BODY,
                SEED_SIGNATURE,
            ),
            (
                "a truncated signature",
                current.as_str(),
                "1700000000",
                BODY,
                &SEED_SIGNATURE[..62],
            ),
            (
                "a signature that is not hex",
                current.as_str(),
                "1700000000",
                BODY,
                "not hex",
            ),
            ("an empty signature", current.as_str(), "1700000000", BODY, ""),
        ];
        assert!(verify_seed(
            current.as_str(),
            "1700000000",
            BODY,
            &headers.x_webhook_signature
        ));
        for (description, secret, timestamp, body, signature) in seed_cases {
            assert!(
                !verify_seed(secret, timestamp, body, signature),
                "seed: {description}"
            );
        }
        let standard_cases: &[(&str, &WebhookSecret, &str, &str, &str, &str)] = &[
            (
                "the wrong secret",
                &other,
                WEBHOOK_ID,
                "1700000000",
                BODY,
                CURRENT_V1,
            ),
            (
                "another webhook id",
                &current,
                "wh_other",
                "1700000000",
                BODY,
                CURRENT_V1,
            ),
            (
                "a tampered body",
                &current,
                WEBHOOK_ID,
                "1700000000",
                &tampered_body,
                CURRENT_V1,
            ),
            (
                "another timestamp",
                &current,
                WEBHOOK_ID,
                "1699999999",
                BODY,
                CURRENT_V1,
            ),
            (
                "another version tag",
                &current,
                WEBHOOK_ID,
                "1700000000",
                BODY,
                &CURRENT_V1.replace("v1,", "v2,"),
            ),
            (
                "no version tag",
                &current,
                WEBHOOK_ID,
                "1700000000",
                BODY,
                &CURRENT_V1[3..],
            ),
            ("an empty header", &current, WEBHOOK_ID, "1700000000", BODY, ""),
            (
                "a signature that is not base64",
                &current,
                WEBHOOK_ID,
                "1700000000",
                BODY,
                "v1,***",
            ),
        ];
        assert!(verify_standard(
            &current,
            WEBHOOK_ID,
            "1700000000",
            BODY,
            &headers.webhook_signature
        ));
        for (description, secret, id, timestamp, body, header) in standard_cases {
            assert!(
                !verify_standard(secret, id, timestamp, body, header),
                "standard: {description}"
            );
        }
        let padded = |junk: usize| {
            let mut header = vec!["v1,AAAA"; junk].join(" ");
            header.push(' ');
            header.push_str(&headers.webhook_signature);
            header
        };
        assert!(
            verify_standard(
                &current,
                WEBHOOK_ID,
                "1700000000",
                BODY,
                &padded(MAX_STANDARD_SIGNATURES - 1)
            ),
            "the right signature among the first eight is found"
        );
        assert!(
            !verify_standard(&current, WEBHOOK_ID, "1700000000", BODY, &padded(25_000)),
            "a header of thousands of entries is looked at only as far as the eighth"
        );
    }

    #[test]
    fn parsing_a_secret_accepts_only_whsec_and_padded_base64_of_16_to_64_bytes() {
        let b64 = |length: usize| STANDARD.encode(vec![7u8; length]);
        let cases: Vec<(&str, String, bool)> = vec![
            ("a generated secret", current_secret().as_str().to_owned(), true),
            ("16 bytes, the minimum", format!("whsec_{}", b64(16)), true),
            ("64 bytes, the maximum", format!("whsec_{}", b64(64)), true),
            ("15 bytes is too short", format!("whsec_{}", b64(15)), false),
            ("65 bytes is too long", format!("whsec_{}", b64(65)), false),
            ("no prefix", b64(24), false),
            ("another prefix", format!("whsec-{}", b64(24)), false),
            ("an upper-case prefix", format!("WHSEC_{}", b64(24)), false),
            ("only the prefix", "whsec_".to_owned(), false),
            ("empty", String::new(), false),
            (
                "missing padding",
                format!("whsec_{}", b64(16).trim_end_matches('=')),
                false,
            ),
            (
                "URL-safe alphabet",
                "whsec_//r18Ovm4dzX0s3Iw765tK+qpaCblpGMh4J9eHNuaWQ=".replace('/', "_"),
                false,
            ),
            ("surrounding whitespace", format!(" whsec_{} ", b64(24)), false),
            (
                "characters outside base64",
                "whsec_AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2!".to_owned(),
                false,
            ),
        ];
        for (description, text, valid) in cases {
            let secret = WebhookSecret::parse(&text);
            assert_eq!(secret.is_some(), valid, "{description}: {text:?}");
            if let Some(secret) = secret {
                assert_eq!(secret.as_str(), text, "{description}");
            }
        }
    }

    #[test]
    fn debug_output_does_not_show_the_secret() {
        assert_eq!(format!("{:?}", current_secret()), "WebhookSecret(whsec_…)");
    }
}
