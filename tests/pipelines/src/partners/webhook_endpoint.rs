//! A business's webhook endpoint: it takes each delivery, checks both signatures as a receiver
//! would (Standard Webhooks' `webhook-signature` with the endpoint's `whsec_` secret, and the
//! guide's `X-Webhook-Signature`), keeps what it got, and answers what the test scripted (200
//! unless told otherwise: a status, a slow answer with `Reply::after`, none with
//! `Reply::never()`), or, as the guide's receiver does, refuses what its one secret does not sign.

use super::hmac_sha256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use edge::runtime::native::{Outbound, Reply, Stack};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// One delivery as the endpoint got it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub call: Outbound,
    pub body: Value,
    /// Both signatures verified under the secret the endpoint knows.
    pub signed: bool,
    /// The guide's receiver verifies it: see [`seed_signature_verifies`], with the secret the
    /// endpoint knows (the first of [`Endpoint::knows_secrets`]).
    pub seed_verified: bool,
    /// A `v1` entry of `webhook-signature` verifies under one of the secrets the endpoint knows.
    pub standard_verified: bool,
    /// The status the endpoint answered with (0: none, it never answered or refused).
    pub answered: u16,
}

#[derive(Clone)]
pub struct Endpoint {
    host: String,
    state: Rc<RefCell<State>>,
}

#[derive(Default)]
struct State {
    secret: String,
    /// Every secret the receiver accepts a Standard Webhooks signature of; the first is `secret`.
    secrets: Vec<String>,
    deliveries: Vec<Delivery>,
    /// Answers for the next deliveries, in order; `otherwise` once they run out.
    scripted: VecDeque<Reply>,
    /// The answer once the scripted ones ran out (200 unless set).
    otherwise: Option<Reply>,
    /// A guide's receiver: what its secret does not sign in `X-Webhook-Signature` is refused 401.
    requires_seed_signature: bool,
}

impl Endpoint {
    /// An endpoint at `https://{host}/hooks`.
    pub fn install(stack: &Stack, host: &str) -> Self {
        let endpoint = Self {
            host: host.to_owned(),
            state: Rc::new(RefCell::new(State::default())),
        };
        let serving = endpoint.clone();
        stack.partner(host, move |call| serving.answer(call));
        endpoint
    }

    pub fn url(&self) -> String {
        format!("https://{}/hooks", self.host)
    }

    /// The endpoint's secret, as the API showed it once (`whsec_…`).
    pub fn knows_secret(&self, secret: &str) {
        self.knows_secrets(&[secret]);
    }

    /// The secrets the receiver holds: the guide's signature must verify under the first, a
    /// Standard Webhooks signature under any.
    pub fn knows_secrets(&self, secrets: &[&str]) {
        let mut state = self.state.borrow_mut();
        state.secret = secrets
            .first()
            .map(|secret| (*secret).to_owned())
            .unwrap_or_default();
        state.secrets = secrets.iter().map(|secret| (*secret).to_owned()).collect();
    }

    /// The next deliveries are answered with these replies, in order.
    pub fn answer_next(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.borrow_mut().scripted.extend(replies);
    }

    /// Every delivery from now on is answered with `reply` (what was scripted is forgotten).
    pub fn answer_always(&self, reply: Reply) {
        let mut state = self.state.borrow_mut();
        state.scripted.clear();
        state.otherwise = Some(reply);
    }

    /// The endpoint refuses with 401 every delivery whose `X-Webhook-Signature` its secret does
    /// not verify, as the guide's Express receiver does.
    pub fn requires_seed_signature(&self) {
        self.state.borrow_mut().requires_seed_signature = true;
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.borrow().deliveries.clone()
    }

    /// The deliveries of events of `kind` (`message.received`).
    pub fn of_event(&self, kind: &str) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|delivery| delivery.body["event"] == kind)
            .collect()
    }

    fn answer(&self, call: &Outbound) -> Reply {
        let mut state = self.state.borrow_mut();
        let signed = verify(&state.secret, call);
        let seed_verified = seed_signature_verifies(&state.secret, call);
        let standard_verified = state
            .secrets
            .iter()
            .any(|secret| standard_signature_match(secret, call).is_some());
        let body = serde_json::from_slice(&call.body).unwrap_or_default();
        let scripted = state
            .scripted
            .pop_front()
            .or_else(|| state.otherwise.clone())
            .unwrap_or_else(|| Reply::text(200, "ok"));
        let reply = if state.requires_seed_signature && !seed_verified {
            Reply::json(401, &serde_json::json!({ "error": "Invalid signature" }))
        } else {
            scripted
        };
        // A reply that never comes, or a refused connection, is no status.
        let never = reply.delay_ms >= 24 * 3600 * 1000;
        let answered = if reply.refused.is_some() || never {
            0
        } else {
            reply.status
        };
        state.deliveries.push(Delivery {
            call: call.clone(),
            body,
            signed,
            seed_verified,
            standard_verified,
            answered,
        });
        reply
    }
}

/// True when both headers sign the body: Standard Webhooks' over `{id}.{timestamp}.{body}` with
/// the secret's decoded key, and the guide's over `{timestamp}.{body}` with the secret's text.
pub fn verify(secret: &str, call: &Outbound) -> bool {
    let (Some(id), Some(timestamp), Some(signatures)) = (
        call.header("webhook-id"),
        call.header("webhook-timestamp"),
        call.header("webhook-signature"),
    ) else {
        return false;
    };
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|encoded| STANDARD.decode(encoded).ok())
    else {
        return false;
    };
    let body = String::from_utf8_lossy(&call.body);
    let expected = format!(
        "v1,{}",
        STANDARD.encode(hmac_sha256(&key, format!("{id}.{timestamp}.{body}").as_bytes()))
    );
    let standard = signatures.split(' ').any(|signature| signature == expected);
    let seed = call.header("x-webhook-signature")
        == Some(
            hex::encode(hmac_sha256(
                secret.as_bytes(),
                format!("{timestamp}.{body}").as_bytes(),
            ))
            .as_str(),
        );
    standard && seed && call.header("x-webhook-timestamp") == Some(timestamp)
}

/// How far a signed timestamp may be from the arrival, as the guide's receiver checks.
const TIMESTAMP_TOLERANCE_SECONDS: i64 = 300;

fn fresh(call: &Outbound, timestamp: &str) -> bool {
    timestamp.len() == 10
        && timestamp
            .parse::<i64>()
            .is_ok_and(|seconds| (call.at_ms / 1000 - seconds).abs() <= TIMESTAMP_TOLERANCE_SECONDS)
}

/// The guide's check: `X-Webhook-Signature` is the hex HMAC-SHA256, keyed with the whole secret
/// text, of `{X-Webhook-Timestamp}.{payload}`, and the timestamp is fresh. The guide's Express
/// receiver computes it over `JSON.stringify(req.body)`, the body it parsed and wrote again, not
/// over the bytes on the wire: it verifies exactly when those are the same bytes
/// ([`js_restringifies_to_itself`]) and they are signed.
pub fn seed_signature_verifies(secret: &str, call: &Outbound) -> bool {
    let (Some(signature), Some(timestamp)) = (
        call.header("x-webhook-signature"),
        call.header("x-webhook-timestamp"),
    ) else {
        return false;
    };
    let message = [timestamp.as_bytes(), b".", &call.body].concat();
    !secret.is_empty()
        && fresh(call, timestamp)
        && js_restringifies_to_itself(&call.body).is_ok()
        && signature == hex::encode(hmac_sha256(secret.as_bytes(), &message))
}

/// The `v1,<base64>` entries of `webhook-signature`, decoded.
pub fn standard_signature_entries(call: &Outbound) -> Vec<Vec<u8>> {
    call.header("webhook-signature")
        .unwrap_or_default()
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .collect()
}

/// Which `v1` entry of `webhook-signature` verifies under `secret` (HMAC-SHA256 keyed with the
/// secret's decoded key over `{webhook-id}.{webhook-timestamp}.{body}`), if any.
pub fn standard_signature_match(secret: &str, call: &Outbound) -> Option<usize> {
    let (id, timestamp) = (call.header("webhook-id")?, call.header("webhook-timestamp")?);
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    if !fresh(call, timestamp) {
        return None;
    }
    let message = [id.as_bytes(), b".", timestamp.as_bytes(), b".", &call.body].concat();
    let expected = hmac_sha256(&key, &message);
    standard_signature_entries(call)
        .iter()
        .position(|entry| entry.as_slice() == expected.as_slice())
}

/// Ok when JavaScript's `JSON.stringify(JSON.parse(body))` gives `body` back byte for byte, as
/// ECMA-262 defines both: no whitespace; strings with only `"`, `\` and the control characters
/// escaped (`\b \t \n \f \r`, else `\u00xx`), and lone surrogates as `\udxxx`; numbers as
/// `Number.prototype.toString` writes them; in each object the keys that are array indices first,
/// in ascending order, and no key twice. Err says where it differs.
pub fn js_restringifies_to_itself(body: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|error| error.to_string())?;
    let mut walker = Walker { text, at: 0 };
    walker.value()?;
    if walker.at != text.len() {
        return Err(format!("text after the value at {}", walker.at));
    }
    Ok(())
}

struct Walker<'a> {
    text: &'a str,
    at: usize,
}

impl Walker<'_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn fail<T>(&self, what: &str) -> Result<T, String> {
        let near: String = self.rest().chars().take(40).collect();
        Err(format!("{what} at {} ({near:?})", self.at))
    }

    fn eat(&mut self, token: &str) -> bool {
        let found = self.rest().starts_with(token);
        if found {
            self.at += token.len();
        }
        found
    }

    fn value(&mut self) -> Result<(), String> {
        match self.rest().chars().next() {
            Some('{') => self.object(),
            Some('[') => self.array(),
            Some('"') => self.string().map(drop),
            Some('-' | '0'..='9') => self.number(),
            _ if self.eat("true") || self.eat("false") || self.eat("null") => Ok(()),
            _ => self.fail("not a value JSON.stringify writes"),
        }
    }

    fn object(&mut self) -> Result<(), String> {
        self.eat("{");
        let mut keys: Vec<String> = Vec::new();
        if !self.eat("}") {
            loop {
                let key = self.string()?;
                if keys.contains(&key) {
                    return self.fail("a key twice");
                }
                keys.push(key);
                if !self.eat(":") {
                    return self.fail("no colon right after a key");
                }
                self.value()?;
                if self.eat("}") {
                    break;
                }
                if !self.eat(",") {
                    return self.fail("no comma right after a member");
                }
            }
        }
        // Array indices come first, ascending; the other keys keep their order.
        let indices: Vec<Option<u64>> = keys.iter().map(|key| array_index(key)).collect();
        let first_other = indices.iter().position(Option::is_none).unwrap_or(indices.len());
        let ordered = indices[..first_other].windows(2).all(|pair| pair[0] < pair[1]);
        if !ordered || indices[first_other..].iter().any(Option::is_some) {
            return Err(format!("keys not in JavaScript's order: {keys:?}"));
        }
        Ok(())
    }

    fn array(&mut self) -> Result<(), String> {
        self.eat("[");
        if self.eat("]") {
            return Ok(());
        }
        loop {
            self.value()?;
            if self.eat("]") {
                return Ok(());
            }
            if !self.eat(",") {
                return self.fail("no comma right after an element");
            }
        }
    }

    /// A string as JSON.stringify writes it; its text.
    fn string(&mut self) -> Result<String, String> {
        if !self.eat("\"") {
            return self.fail("not a string");
        }
        let mut text = String::new();
        loop {
            let Some(c) = self.rest().chars().next() else {
                return self.fail("an unended string");
            };
            self.at += c.len_utf8();
            match c {
                '"' => return Ok(text),
                '\\' => text.push(self.escape()?),
                c if u32::from(c) < 0x20 => return self.fail("a control character not escaped"),
                c => text.push(c),
            }
        }
    }

    /// The character an escape (after its backslash) stands for, if JSON.stringify writes it so.
    fn escape(&mut self) -> Result<char, String> {
        let Some(escaped) = self.rest().chars().next() else {
            return self.fail("an unended escape");
        };
        self.at += escaped.len_utf8();
        let short = match escaped {
            '"' => '"',
            '\\' => '\\',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => return self.unicode_escape(),
            _ => return self.fail("an unknown escape"),
        };
        Ok(short)
    }

    fn unicode_escape(&mut self) -> Result<char, String> {
        let hex = self.rest().get(..4).unwrap_or_default();
        let lowercase = hex.len() == 4
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let Some(code) = u32::from_str_radix(hex, 16).ok().filter(|_| lowercase) else {
            return self.fail("not four lowercase hex digits");
        };
        self.at += 4;
        let short = [0x8, 0x9, 0xa, 0xc, 0xd].contains(&code);
        let surrogate = (0xd800..=0xdfff).contains(&code);
        if (code >= 0x20 && !surrogate) || short {
            return self.fail("an escape JSON.stringify does not write");
        }
        let next = self
            .rest()
            .strip_prefix("\\u")
            .and_then(|rest| rest.get(..4))
            .and_then(|hex| u32::from_str_radix(hex, 16).ok());
        if (0xd800..0xdc00).contains(&code) && next.is_some_and(|next| (0xdc00..=0xdfff).contains(&next)) {
            return self.fail("a surrogate pair escaped (JSON.stringify writes the character)");
        }
        Ok(char::from_u32(code).unwrap_or('\u{fffd}'))
    }

    fn number(&mut self) -> Result<(), String> {
        let length = self
            .rest()
            .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
            .unwrap_or(self.rest().len());
        let written = &self.rest()[..length];
        let Ok(value) = written.parse::<f64>() else {
            return self.fail("not a number");
        };
        if js_number(value) != written {
            return Err(format!("{written} is written {} by JavaScript", js_number(value)));
        }
        self.at += length;
        Ok(())
    }
}

/// The index a key is when it is an array index (`0`, or digits without a leading zero, below
/// 2^32 - 1).
fn array_index(key: &str) -> Option<u64> {
    let canonical = key == "0" || (!key.starts_with('0') && !key.is_empty());
    let digits = key.bytes().all(|b| b.is_ascii_digit());
    let index: u64 = key.parse().ok().filter(|_| canonical && digits)?;
    (index < u64::from(u32::MAX)).then_some(index)
}

/// `Number.prototype.toString()` of `value` (ECMA-262's Number::toString, radix 10).
pub fn js_number(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    if !value.is_finite() {
        return "null".to_owned();
    }
    let sign = if value < 0.0 { "-" } else { "" };
    // The shortest digits that read back as the value, and the exponent of the first.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i64;
    let n = exponent.parse::<i64>().unwrap_or(0) + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let fraction = if k > 1 {
            format!(".{}", &digits[1..])
        } else {
            String::new()
        };
        let e = n - 1;
        format!(
            "{}{fraction}e{}{}",
            &digits[..1],
            if e < 0 { '-' } else { '+' },
            e.abs()
        )
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_javascript_writes_them() {
        // Node 20's `String(x)` of each.
        let cases = [
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (0.1, "0.1"),
            (1.0, "1"),
            (12_345_678_901_234_567_890.0, "12345678901234567000"),
            (5e-7, "5e-7"),
            (0.000_001, "0.000001"),
            (-1.5e-10, "-1.5e-10"),
            (9_007_199_254_740_993.0, "9007199254740992"),
            (123.456, "123.456"),
            (-0.0, "0"),
        ];
        for (value, written) in cases {
            assert_eq!(js_number(value), written, "{value:e}");
        }
    }

    #[test]
    fn a_body_javascript_would_write_differently_is_told_apart() {
        let cases = [
            (r#"{"a":1,"b":[true,null,"x"]}"#, true, "plain"),
            (
                r#"{"2":1,"10":2,"b":3,"a":4}"#,
                true,
                "indices first, the rest as given",
            ),
            (r#"{"b":3,"2":1}"#, false, "an index after a name"),
            (r#"{"10":1,"2":2}"#, false, "indices out of order"),
            (
                r#"{"01":1,"4294967295":2,"b":3}"#,
                true,
                "01 and 2^32 - 1 are no indices",
            ),
            (r#"{"a": 1}"#, false, "whitespace"),
            (r#"{"a":1.0}"#, false, "1.0 is written 1"),
            (r#"{"a":-0}"#, false, "-0 is written 0"),
            (r#"{"a":1e21}"#, false, "1e21 is written 1e+21"),
            (r#"{"a":"\u00e9"}"#, false, "é is written as itself"),
            (
                r#"{"a":"\ud83e\udd80"}"#,
                false,
                "a pair is written as the character",
            ),
            (r#"{"a":"\ud83e"}"#, true, "a lone surrogate is escaped"),
            (r#"{"a":"\u0007\n"}"#, true, "control characters escaped"),
            (r#"{"a":"\u000a"}"#, false, "a newline is written \\n"),
            (r#"{"a":"\/"}"#, false, "a slash is not escaped"),
            (r#"{"a":1,"a":2}"#, false, "a key twice"),
        ];
        for (body, same, description) in cases {
            assert_eq!(
                js_restringifies_to_itself(body.as_bytes()).is_ok(),
                same,
                "{description}: {body}"
            );
        }
    }
}
