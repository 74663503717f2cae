//! A business connected to its own HubSpot account through the admin API with a private app's
//! token, as an operator connects one.

use crate::app::{Answer, App, Business};
use crate::partners::hubspot::HubSpot;
use crate::steps::unique;
use edge::runtime::Method;
use serde_json::{Value, json};

/// A business connected to a HubSpot account of its own.
pub struct Connected {
    pub business: Business,
    /// The connector as the admin API showed it when it was made.
    pub connector: Value,
    pub hubspot: HubSpot,
}

impl Connected {
    pub fn id(&self) -> &str {
        self.connector["id"].as_str().unwrap_or_default()
    }
}

/// A new business connected to a new HubSpot account; `settings` add to the connector's (its
/// budget is off).
pub async fn connected_business(app: &App, settings: Value) -> Connected {
    let business = app.business("Acme").await;
    let token = unique("pat-na1-");
    let hubspot = HubSpot::install(&app.stack, &token);
    let connector = app
        .admin(
            Method::Post,
            &format!("/admin/businesses/{}/connectors", business.id),
            Some(json!({
                "kind": "hubspot",
                "settings": settings,
                "secrets": { "access_token": token },
                "rate_limit": super::no_budget()
            })),
        )
        .await
        .expect(201)
        .json();
    Connected {
        business,
        connector,
        hubspot,
    }
}

/// The app whose webhooks feed the connector: its client id and secret.
pub const APP_CLIENT_ID: &str = "hubspot-app";
pub const APP_CLIENT_SECRET: &str = "hubspot-app-secret";

impl Connected {
    /// Registers the app on the account (holding `scopes`) and sets its client secret as the
    /// connector's, so that the app's webhooks to the connector are taken.
    pub async fn subscribe_app(&self, app: &App, scopes: &[&str]) {
        self.hubspot.register_app(
            APP_CLIENT_ID,
            APP_CLIENT_SECRET,
            &format!("{}/console/", crate::app::ORIGIN),
            scopes,
        );
        app.admin(
            Method::Patch,
            &format!("/admin/connectors/{}", self.id()),
            Some(json!({ "secrets": { "client_secret": APP_CLIENT_SECRET } })),
        )
        .await
        .expect(200);
    }

    /// Delivers `events` to the connector's webhook as HubSpot does, signed with `secret` as of
    /// `at_ms`.
    pub async fn deliver(&self, app: &App, events: &Value, at_ms: i64, secret: &str) -> Answer {
        let path = format!("/api/webhooks/hubspot/{}", self.id());
        let uri = format!("{}{path}", crate::app::ORIGIN);
        let delivery = self.hubspot.webhook(secret, &uri, events, at_ms);
        app.request(
            Method::Post,
            &path,
            &delivery.header_pairs(),
            delivery.body.clone(),
        )
        .await
    }
}
