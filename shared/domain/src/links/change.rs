//! A change to a link, as `PATCH /api/dashboard/crm-links` takes it: the link named by its page
//! and id, and any of its settings, each checked as when a link is added. What is left out stays
//! as it is. A credential shown masked (`***`) is sent back as it is shown: `api_key: "***"` and a
//! header whose value is `***` keep the stored value, so a form that shows a link can send the
//! whole link back without knowing its secrets. `api_key` empty or null removes the key.
//! `holds` may be said (general or customers) but not unsaid.

use crate::bot::subject::Holds;
use crate::destination::Destination;
use crate::error::ApiError;
use crate::ids::SourceId;
use crate::links::link::{
    Header, Link, LinkChannel, LinkSecret, MASK, PageId, channels, headers, interval, secret, string, text,
};
use serde_json::Value;

const FIELDS: &[&str] = &[
    "page_id",
    "id",
    "name",
    "channels",
    "url",
    "api_key",
    "headers",
    "description",
    "fetch_interval_minutes",
    "holds",
];
const MAX_NAME_CHARS: usize = 100;
const MAX_DESCRIPTION_CHARS: usize = 500;

/// A link's changed settings; None: unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkChange {
    pub page_id: PageId,
    pub id: SourceId,
    pub name: Option<String>,
    /// Every channel the link is to be on (it leaves the others).
    pub channels: Option<Vec<LinkChannel>>,
    pub url: Option<Destination>,
    /// Some(None): the key removed.
    api_key: Option<Option<LinkSecret>>,
    /// Every header, a value of `***` meaning the stored one.
    headers: Option<Vec<Header>>,
    pub description: Option<Option<String>>,
    pub fetch_interval_minutes: Option<u32>,
    pub holds: Option<Holds>,
}

/// What a change did to a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub link: Link,
    /// The settings that differ from before, by name (never their values: some are secrets).
    pub fields: Vec<&'static str>,
}

impl Changed {
    /// Whether the data must be read again: where it comes from or how, or whose it is.
    pub fn needs_fetch(&self) -> bool {
        self.fields
            .iter()
            .any(|field| matches!(*field, "url" | "api_key" | "headers" | "holds"))
    }
}

impl LinkChange {
    /// `allow_loopback`: as for [`Destination::parse`], true only in the local stack.
    pub fn parse(input: &Value, allow_loopback: bool) -> Result<Self, ApiError> {
        let fields = crate::json::members(input, FIELDS, "CRM link change")?;
        let given = |name: &str| fields.get(name).filter(|value| !value.is_null());
        let required =
            |name: &str| given(name).ok_or_else(|| ApiError::invalid(name, format!("{name} is required")));
        let page_id = PageId::parse(required("page_id")?)?;
        let id = SourceId::parse(string("id", required("id")?)?)
            .ok_or_else(|| ApiError::invalid("id", "id must be a link's id, as its view shows it"))?;
        let name = given("name")
            .map(|value| {
                text("name", value, MAX_NAME_CHARS)?
                    .ok_or_else(|| ApiError::invalid("name", "name must not be empty"))
            })
            .transpose()?;
        let channels = given("channels")
            .map(|list| channels(Some(list), None))
            .transpose()?;
        let url = given("url")
            .map(|value| {
                Destination::parse("url", string("url", value)?, allow_loopback)
                    .map_err(|message| ApiError::invalid("url", message))
            })
            .transpose()?;
        // Present as null or empty: removed.
        let api_key = match fields.get("api_key") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(value) => Some(secret("api_key", value)?),
        };
        let headers = given("headers")
            .map(|value| headers(Some(value), false))
            .transpose()?;
        let description = match fields.get("description") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(value) => Some(text("description", value, MAX_DESCRIPTION_CHARS)?),
        };
        let fetch_interval_minutes = given("fetch_interval_minutes").map(interval).transpose()?;
        let holds = match fields.get("holds") {
            None => None,
            Some(value) => match Holds::parse(Some(value))? {
                Holds::Unstated => {
                    return Err(ApiError::invalid(
                        "holds",
                        "holds says whose data the link is: {\"type\": \"general\"} or {\"type\": \"customers\", \
                         \"field\": …, \"key\": …}; it cannot be unsaid",
                    ));
                }
                holds => Some(holds),
            },
        };
        Ok(Self {
            page_id,
            id,
            name,
            channels,
            url,
            api_key,
            headers,
            description,
            fetch_interval_minutes,
            holds,
        })
    }

    /// The link with the change applied to `link`, and what differs. A masked credential keeps
    /// the stored one; a header masked that the link does not have is refused, and so is an
    /// `Authorization` header beside an API key.
    pub fn apply(&self, link: &Link) -> Result<Changed, ApiError> {
        let mut changed = link.clone();
        if let Some(name) = &self.name {
            changed.name = name.clone();
        }
        if let Some(url) = &self.url {
            changed.url = url.clone();
        }
        match &self.api_key {
            Some(Some(key)) if key.expose() == MASK => {}
            Some(key) => changed.api_key = key.clone(),
            None => {}
        }
        if let Some(headers) = &self.headers {
            let mut kept = Vec::with_capacity(headers.len());
            for header in headers {
                let value = if header.value.expose() == MASK {
                    link.headers
                        .iter()
                        .find(|stored| stored.name.eq_ignore_ascii_case(&header.name))
                        .map(|stored| stored.value.clone())
                        .ok_or_else(|| {
                            ApiError::invalid(
                                format!("headers.{}", header.name),
                                format!(
                                    "{MASK} keeps a header's value, and the link has no {} header",
                                    header.name
                                ),
                            )
                        })?
                } else {
                    header.value.clone()
                };
                kept.push(Header {
                    name: header.name.clone(),
                    value,
                });
            }
            changed.headers = kept;
        }
        if changed.api_key.is_some()
            && let Some(header) = changed
                .headers
                .iter()
                .find(|header| header.name.eq_ignore_ascii_case("authorization"))
        {
            return Err(ApiError::invalid(
                format!("headers.{}", header.name),
                "api_key is sent as Authorization: Bearer; give api_key or an Authorization header, not both",
            ));
        }
        if let Some(description) = &self.description {
            changed.description = description.clone();
        }
        if let Some(minutes) = self.fetch_interval_minutes {
            changed.fetch_interval_minutes = minutes;
        }
        if let Some(holds) = &self.holds {
            changed.holds = holds.clone();
        }
        let headers = |link: &Link| -> Vec<(String, String)> {
            link.headers
                .iter()
                .map(|header| (header.name.clone(), header.value.expose().to_owned()))
                .collect()
        };
        let fields = [
            ("name", link.name != changed.name),
            ("url", link.url != changed.url),
            ("api_key", link.api_key != changed.api_key),
            ("headers", headers(link) != headers(&changed)),
            ("description", link.description != changed.description),
            (
                "fetch_interval_minutes",
                link.fetch_interval_minutes != changed.fetch_interval_minutes,
            ),
            ("holds", link.holds != changed.holds),
        ]
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect();
        Ok(Changed {
            link: changed,
            fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::subject::KeyKind;
    use crate::links::link::NewLink;
    use serde_json::json;

    fn stored() -> Link {
        NewLink::parse(
            &json!({
                "page_id": "123", "channels": ["messenger"], "name": "Shop", "url": "https://crm.example/customers",
                "api_key": "old-key", "headers": { "X-Shop": "shop-secret" }, "is_active": true,
            }),
            false,
        )
        .unwrap_or_else(|error| panic!("{error:?}"))
        .link
    }

    fn change(body: Value) -> Result<Changed, ApiError> {
        let mut input = json!({ "page_id": "123", "id": "0b1f2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b" });
        if let (Some(input), Some(body)) = (input.as_object_mut(), body.as_object()) {
            input.extend(body.clone());
        }
        LinkChange::parse(&input, false)?.apply(&stored())
    }

    #[test]
    fn a_key_is_rotated_and_masked_credentials_are_kept_as_they_were() {
        let rotated = change(json!({ "api_key": "new-key", "headers": { "X-Shop": "***" } }))
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(rotated.fields, ["api_key"]);
        assert_eq!(
            rotated.link.api_key.as_ref().map(LinkSecret::expose),
            Some("new-key")
        );
        assert_eq!(rotated.link.headers[0].value.expose(), "shop-secret");
        assert!(rotated.needs_fetch());
        let same =
            change(json!({ "api_key": "***", "name": "Shop" })).unwrap_or_else(|error| panic!("{error:?}"));
        assert!(same.fields.is_empty(), "{:?}", same.fields);
        let removed = change(json!({ "api_key": null })).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(removed.link.api_key, None);
        assert_eq!(removed.fields, ["api_key"]);
    }

    #[test]
    fn the_interval_and_whose_data_it_is_change_in_place() {
        let slower =
            change(json!({ "fetch_interval_minutes": 120 })).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(slower.fields, ["fetch_interval_minutes"]);
        assert!(!slower.needs_fetch(), "a slower schedule reads nothing again now");
        let holds = change(json!({ "holds": { "type": "customers", "field": "email", "key": "email" } }))
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(
            holds.link.holds,
            Holds::Customers {
                field: "email".to_owned(),
                kind: KeyKind::Email
            }
        );
        assert!(holds.needs_fetch());
    }

    #[test]
    fn a_bad_change_is_refused_naming_its_field() {
        let cases = [
            (json!({ "holds": null }), "holds"),
            (json!({ "fetch_interval_minutes": 1 }), "fetch_interval_minutes"),
            (json!({ "headers": { "X-Other": "***" } }), "headers.X-Other"),
            (
                json!({ "headers": { "Authorization": "Basic x" } }),
                "headers.Authorization",
            ),
            (json!({ "url": "http://10.0.0.1/x" }), "url"),
            (json!({ "name": "" }), "name"),
            (json!({ "is_active": true }), "is_active"),
        ];
        for (body, field) in cases {
            let error = change(body.clone()).err();
            assert_eq!(error.and_then(|e| e.body.field).as_deref(), Some(field), "{body}");
        }
        let no_id = LinkChange::parse(&json!({ "page_id": "123" }), false).err();
        assert_eq!(no_id.and_then(|e| e.body.field).as_deref(), Some("id"));
    }
}
