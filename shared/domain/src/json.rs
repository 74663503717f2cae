//! Reading JSON the way every endpoint does: a value of the wrong type is refused with the path
//! to it (`customers[3].tags`), so the client knows what to fix.

use crate::error::ApiError;
use serde::de::DeserializeOwned;

/// Deserialises JSON, naming the path of a value of the wrong type (`customers[3].tags`).
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let field = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if field == "." { String::new() } else { field };
                ApiError::invalid(field, format!("the request body has the wrong shape: {inner}"))
            }
            _ => ApiError::malformed(format!("the request body is not valid JSON: {inner}")),
        }
    })?;
    deserializer
        .end()
        .map_err(|error| ApiError::malformed(format!("the request body is not valid JSON: {error}")))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[derive(Debug, serde::Deserialize)]
    struct Body {
        #[allow(dead_code)]
        customers: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Item {
        #[allow(dead_code)]
        tags: Vec<String>,
    }

    #[test]
    fn json_bodies_are_refused_with_the_path_of_what_is_wrong() {
        let cases: [(&[u8], ErrorCode, Option<&str>, &str); 5] = [
            (
                b"{\"customers\": [{\"tags\": [\"a\", 1]}]}",
                ErrorCode::ValidationFailed,
                Some("customers[0].tags[1]"),
                "wrong type deep inside",
            ),
            (
                b"{\"customers\": \"x\"}",
                ErrorCode::ValidationFailed,
                Some("customers"),
                "wrong type at the top",
            ),
            (b"{}", ErrorCode::ValidationFailed, Some(""), "missing field"),
            (
                b"{\"customers\": []} trailing",
                ErrorCode::MalformedRequest,
                None,
                "garbage after the JSON",
            ),
            (
                b"{\"customers\": [",
                ErrorCode::MalformedRequest,
                None,
                "truncated",
            ),
        ];
        for (body, code, field, description) in cases {
            let error = from_json::<Body>(body).err();
            assert_eq!(error.as_ref().map(ApiError::code), Some(code), "{description}");
            assert_eq!(
                error.and_then(|e| e.body.field),
                field.map(str::to_owned),
                "{description}"
            );
        }
        assert!(from_json::<Body>(b" {\"customers\": [{\"tags\": []}]} \n").is_ok());
    }
}
