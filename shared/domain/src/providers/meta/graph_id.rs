//! Ids as Meta writes them: strings, but some of its own examples (and test tools) write numbers.

use serde::{Deserialize, Deserializer};

/// Meta writes ids as strings, but some of its own examples (and test tools) write numbers.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdRepr {
    Text(String),
    Number(u64),
}

impl From<IdRepr> for String {
    fn from(id: IdRepr) -> Self {
        match id {
            IdRepr::Text(text) => text,
            IdRepr::Number(number) => number.to_string(),
        }
    }
}

pub(super) fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    IdRepr::deserialize(deserializer).map(String::from)
}

pub(super) fn optional_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Option::<IdRepr>::deserialize(deserializer).map(|id| id.map(String::from))
}
