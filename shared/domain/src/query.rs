//! A request's query string, decoded once. Every endpoint reads its parameters through [`Query`],
//! so a parameter given twice, a flag, or a page size means the same everywhere.

use crate::error::ApiError;
use base64::Engine;
use url::form_urlencoded;

/// `limit` of a listing when none is given, and the most it may be.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 500;

/// A listing's cursor as the client holds it: `kind` (a short tag that keeps one listing's cursor
/// from being read by another, like `m1.`) and `position`, base64url without padding, so that it
/// is opaque and passes through a query string unescaped.
pub fn encode_cursor(kind: &str, position: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}{position}"))
}

/// The position of a cursor [`encode_cursor`] made for `kind`; None for anything else.
pub fn decode_cursor(kind: &str, token: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix(kind)
        .map(str::to_owned)
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// The parameters of `query` (the part after `?`, if any), percent- and `+`-decoded.
    pub fn parse(query: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, if it was given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every parameter, in order, as given.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The names of the parameters given, each once, in their first order.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for (name, _) in &self.0 {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        names
    }

    /// A boolean parameter (`include_messages=true`); absent is false.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        let Some(value) = self.get(name) else {
            return Ok(false);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" | "" => Ok(false),
            _ => Err(ApiError::invalid(name, format!("{name} is true or false"))),
        }
    }

    /// A listing's `limit`: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when absent.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(DEFAULT_PAGE),
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|limit| (1..=MAX_PAGE).contains(limit))
                .ok_or_else(|| {
                    ApiError::invalid("limit", format!("limit must be a number from 1 to {MAX_PAGE}"))
                }),
        }
    }

    /// A phone number given in the query: an unencoded `+` (`?phone=+353…`) arrives as a space,
    /// and is put back.
    pub fn phone(&self, name: &str) -> Option<String> {
        let value = self.get(name)?;
        Some(match value.strip_prefix(' ') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => format!("+{rest}"),
            _ => value.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_decoded_and_the_first_of_a_name_wins() {
        let query = Query::parse(Some("a=1&b=two%20words&a=2&c=x+y"));
        assert_eq!(query.get("a"), Some("1"));
        assert_eq!(query.get("b"), Some("two words"));
        assert_eq!(query.get("c"), Some("x y"));
        assert_eq!(query.get("d"), None);
        assert_eq!(Query::parse(None).get("a"), None);
    }

    #[test]
    fn flags_are_true_or_false_and_absent_is_false() {
        let query = Query::parse(Some("x=true&y=0&z=maybe"));
        assert_eq!(query.flag("x"), Ok(true));
        assert_eq!(query.flag("y"), Ok(false));
        assert_eq!(query.flag("absent"), Ok(false));
        assert_eq!(query.flag("z").map_err(|e| e.status()), Err(422));
    }

    #[test]
    fn a_limit_is_from_1_to_500_and_100_by_default() {
        assert_eq!(Query::parse(None).limit(), Ok(100));
        assert_eq!(Query::parse(Some("limit=500")).limit(), Ok(500));
        for bad in ["0", "501", "-1", "ten", ""] {
            let query = Query::parse(Some(&format!("limit={bad}")));
            assert_eq!(query.limit().map_err(|e| e.status()), Err(422), "{bad:?}");
        }
    }

    #[test]
    fn a_phone_whose_plus_became_a_space_is_repaired() {
        let query = Query::parse(Some("phone=+353871234567&other=+x"));
        assert_eq!(query.phone("phone").as_deref(), Some("+353871234567"));
        assert_eq!(query.phone("other").as_deref(), Some(" x"));
    }
}
