//! Which function owns which path. Paths are the seed's, so its client code works unchanged.
//! The table itself is generated from the endpoints' declarations (`route_table.rs`).

use crate::route_table::{EXACT, PREFIXES};

/// The service binding (declared in the top-level `wrangler.toml`) that serves `path`, and the
/// route it matched.
pub fn owning(path: &str) -> Option<domain::api::Owning<'static>> {
    domain::api::owning(EXACT, PREFIXES, path)
}

#[cfg(test)]
fn function_for(path: &str) -> Option<&'static str> {
    owning(path).map(|owning| owning.owner)
}

#[cfg(test)]
mod tests {
    use super::function_for;

    #[test]
    fn each_seed_path_reaches_its_function() {
        let cases = [
            ("/api-customers", Some("CUSTOMERS")),
            ("/api-customers/", Some("CUSTOMERS")),
            ("/api-customers-sync", Some("CUSTOMERS_SYNC")),
            ("/api-customers-bulk-create", Some("CUSTOMERS_BULK_CREATE")),
            ("/api-customers-batch-lookup", Some("CUSTOMERS_BATCH_LOOKUP")),
            ("/admin/businesses", Some("ADMIN")),
            ("/admin/api-keys/x", Some("ADMIN")),
            ("/api-messages-since", Some("MESSAGES_SINCE")),
            ("/api-send-message", Some("SEND_MESSAGE")),
            (
                "/api-conversations-by-customer",
                Some("CONVERSATIONS_BY_CUSTOMER"),
            ),
            (
                "/webhooks/meta/8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f",
                Some("RECEIVER_META"),
            ),
            ("/webhooks/twilio/x", Some("RECEIVER_TWILIO")),
            ("/api-webhooks", Some("WEBHOOKS")),
            ("/api-webhooks/x/replay", Some("WEBHOOKS")),
            ("/api-webhook-attempts", Some("WEBHOOKS")),
            ("/api-conversations/x", Some("CONVERSATIONS")),
            ("/api-conversations", None),
            ("/webhooks/mailgun/x", Some("RECEIVER_EMAIL")),
            ("/api-sso-generate-token", Some("SSO_TOKEN")),
            ("/api-sso-revoke-token", Some("SSO_TOKEN")),
            ("/embed/inbox", Some("EMBED_INBOX")),
            ("/embed/api/timeline", Some("EMBED_INBOX")),
            ("/embed/assets/inbox.js", Some("EMBED_INBOX")),
            ("/embed", None),
            ("/webhooks/meta", None),
            ("/admin", None),
            ("/api-customers-syncx", None),
            ("/", None),
            ("/../admin/businesses", None),
        ];
        for (path, expected) in cases {
            assert_eq!(function_for(path), expected, "{path}");
        }
    }
}
