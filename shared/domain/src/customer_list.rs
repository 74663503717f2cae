//! Listing a business's customers (`GET /api-customers` without an identifier): newest first, a
//! page at a time, optionally narrowed by tag, source system or last change.
//!
//! Customers created by one bulk request share their `created_at` to the millisecond, so the
//! order is `created_at` then `id`, both descending, and the cursor carries both: a page never
//! repeats or skips a customer, however many share a moment.

use crate::error::ApiError;
use crate::ids::CustomerId;
use crate::query::{Query, decode_cursor, encode_cursor};
use crate::time::Timestamp;

const CURSOR_KIND: &str = "c1.";

/// The parameters a listing takes.
const PARAMETERS: [&str; 5] = ["cursor", "limit", "tag", "external_system", "updated_since"];

/// Where the next page starts: after (older than) this customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    pub created_at: String,
    pub id: CustomerId,
}

impl ListCursor {
    pub fn encode(&self) -> String {
        encode_cursor(CURSOR_KIND, &format!("{}|{}", self.created_at, self.id))
    }

    pub fn decode(token: &str) -> Option<Self> {
        let position = decode_cursor(CURSOR_KIND, token)?;
        let (created_at, id) = position.split_once('|')?;
        Timestamp::parse_rfc3339(created_at)?;
        Some(Self {
            created_at: created_at.to_owned(),
            id: CustomerId::parse(id)?,
        })
    }
}

/// The query of a customer listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub after: Option<ListCursor>,
    pub limit: usize,
    /// Only customers carrying this tag.
    pub tag: Option<String>,
    /// Only customers from this system (`external_system`, as stored).
    pub external_system: Option<String>,
    /// Only customers created or changed after this moment.
    pub updated_since: Option<Timestamp>,
}

impl ListQuery {
    /// `cursor` (from a previous page), `limit` (1..=500, default 100), and the optional filters
    /// `tag`, `external_system` and `updated_since` (RFC 3339).
    pub fn parse(query: &Query) -> Result<Self, ApiError> {
        // A parameter the listing does not know (a filter by name, say) would otherwise list
        // everything as if it had filtered.
        if let Some(unknown) = query.names().into_iter().find(|name| !PARAMETERS.contains(name)) {
            return Err(ApiError::invalid(
                unknown,
                format!(
                    "{unknown} is not a parameter of this listing: it takes {}; one customer is named by \
                     id, external_id, email or phone",
                    PARAMETERS.join(", ")
                ),
            ));
        }
        let after = query
            .get("cursor")
            .map(|cursor| {
                ListCursor::decode(cursor).ok_or_else(|| {
                    ApiError::invalid(
                        "cursor",
                        "cursor is not one this API returned; pass next_cursor back unchanged",
                    )
                })
            })
            .transpose()?;
        let text = |name: &str| {
            query
                .get(name)
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        let updated_since = text("updated_since")
            .map(|since| {
                // In a query string an unencoded '+' of an offset arrives as a space.
                Timestamp::parse_rfc3339(&since.replace(' ', "+")).ok_or_else(|| {
                    ApiError::invalid(
                        "updated_since",
                        "updated_since must be an RFC 3339 timestamp, like 2025-11-04T09:00:00Z",
                    )
                })
            })
            .transpose()?;
        Ok(Self {
            after,
            limit: query.limit()?,
            tag: text("tag"),
            external_system: text("external_system"),
            updated_since,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> Query {
        Query::parse(Some(text))
    }

    #[test]
    fn a_cursor_reads_back_to_the_customer_it_was_made_after() {
        let cursor = ListCursor {
            created_at: "2025-11-04T09:00:00.123Z".to_owned(),
            id: CustomerId::generate([7; 16]),
        };
        assert_eq!(ListCursor::decode(&cursor.encode()), Some(cursor));
    }

    #[test]
    fn forged_cursors_are_refused() {
        let id = CustomerId::generate([7; 16]);
        let encode = |text: String| encode_cursor("", &text);
        for forged in [
            String::new(),
            "xyz".to_owned(),
            encode(format!("c2.2025-11-04T09:00:00.123Z|{id}")),
            encode(format!("c1.yesterday|{id}")),
            encode("c1.2025-11-04T09:00:00.123Z|not-an-id".to_owned()),
            encode("c1.2025-11-04T09:00:00.123Z".to_owned()),
        ] {
            assert_eq!(ListCursor::decode(&forged), None, "{forged}");
        }
    }

    #[test]
    fn a_bare_listing_is_the_first_page_of_a_hundred_without_filters() {
        assert_eq!(
            ListQuery::parse(&query("")),
            Ok(ListQuery {
                after: None,
                limit: 100,
                tag: None,
                external_system: None,
                updated_since: None,
            })
        );
    }

    #[test]
    fn filters_are_read_and_blank_ones_ignored() {
        let parsed = ListQuery::parse(&query(
            "tag=vip&external_system=salesforce&updated_since=2025-11-04T10:00:00+01:00&limit=5",
        ));
        assert_eq!(
            parsed.map(|q| (
                q.tag,
                q.external_system,
                q.updated_since.map(Timestamp::micros),
                q.limit
            )),
            Ok((
                Some("vip".to_owned()),
                Some("salesforce".to_owned()),
                Some(1_762_246_800_000_000),
                5
            ))
        );
        assert_eq!(
            ListQuery::parse(&query("tag=&external_system=%20")).map(|q| (q.tag, q.external_system)),
            Ok((None, None))
        );
    }

    #[test]
    fn bad_listings_are_refused_with_the_parameter_at_fault() {
        for (text, field) in [
            ("cursor=forged", "cursor"),
            ("limit=0", "limit"),
            ("limit=501", "limit"),
            ("updated_since=yesterday", "updated_since"),
            ("name=John", "name"),
        ] {
            let error = ListQuery::parse(&query(text)).err();
            assert_eq!(error.as_ref().map(ApiError::status), Some(422), "{text}");
            assert_eq!(error.and_then(|e| e.body.field).as_deref(), Some(field), "{text}");
        }
    }
}
