//! A business connected to its own HubSpot account through the admin API with a private app's
//! token, as an operator connects one.

use crate::app::{App, Business};
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
