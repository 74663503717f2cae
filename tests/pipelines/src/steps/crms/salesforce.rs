//! A business connected to its own Salesforce org through the admin API with a person's
//! authorisation of the org's external client app (its tokens given as secrets), as an operator
//! connects one.

use crate::app::{Answer, App, Business};
use crate::partners::salesforce::{HOST, Notified, Salesforce, outbound_message};
use crate::steps::unique;
use edge::runtime::Method;
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "3MVG9-acme-app";
pub const CLIENT_SECRET: &str = "acme-app-secret";
/// The secret last segment of the connector's Outbound Message endpoint.
pub const OUTBOUND_TOKEN: &str = "oT7kq2Vd9Lz4Xw8Rb3Nc6Hy1Mf5Pj0Gs";

/// A business connected to a Salesforce org of its own.
pub struct Connected {
    pub business: Business,
    /// The connector as the admin API showed it when it was made.
    pub connector: Value,
    pub salesforce: Salesforce,
}

impl Connected {
    pub fn id(&self) -> &str {
        self.connector["id"].as_str().unwrap_or_default()
    }

    /// Posts an Outbound Message of `notifications` from `organization` to the connector's
    /// endpoint whose last segment is `token`, as the org does.
    pub async fn notify(
        &self,
        app: &App,
        organization: &str,
        token: &str,
        notifications: &[Notified<'_>],
    ) -> Answer {
        let path = format!("/api/webhooks/salesforce/{}/{token}", self.id());
        let body = outbound_message(organization, notifications);
        app.request(
            Method::Post,
            &path,
            &[
                ("content-type", "text/xml; charset=utf-8"),
                ("soapaction", "\"\""),
            ],
            body.into_bytes(),
        )
        .await
    }
}

/// A new business connected to a new Salesforce org; `settings` add to the connector's (its
/// budget is off).
pub async fn connected_business(app: &App, settings: Value) -> Connected {
    let business = app.business("Acme").await;
    let access_token = unique("00D5g000004Xyz!AQ");
    let refresh_token = unique("5Aep861");
    let salesforce = Salesforce::install(&app.stack, &access_token);
    salesforce.add_app(CLIENT_ID, CLIENT_SECRET, Some(&refresh_token));
    let mut all = json!({ "instance_url": format!("https://{HOST}") });
    if let (Some(all), Some(given)) = (all.as_object_mut(), settings.as_object()) {
        all.extend(given.clone());
    }
    let connector = app
        .admin(
            Method::Post,
            &format!("/admin/businesses/{}/connectors", business.id),
            Some(json!({
                "kind": "salesforce",
                "settings": all,
                "secrets": {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "access_token": access_token,
                    "refresh_token": refresh_token,
                    "outbound_token": OUTBOUND_TOKEN,
                },
                "rate_limit": super::no_budget()
            })),
        )
        .await
        .expect(201)
        .json();
    Connected {
        business,
        connector,
        salesforce,
    }
}
