//! Whose data a link is, as the API asks it to be said: a link whose records name customers is
//! refused until its `holds` says whose they are (taken as general knowledge, every customer's
//! record would be given to any asker), and the holds data of a shape should say.

use domain::bot::subject::{Holds, KeyKind};
use domain::error::ApiError;
use domain::links::identifiers::Identified;
use domain::links::link::NewLink;
use edge::{Env, knowledge, platform::http};
use serde_json::json;

/// The holds data like `identified` should say.
pub fn proposed(identified: &Identified) -> Holds {
    match &identified.proposed {
        Some((field, kind)) => Holds::Customers {
            field: field.clone(),
            kind: *kind,
        },
        None => Holds::General,
    }
}

/// Refuses a link of unstated holds whose first page names customers (422 naming `holds`, with
/// the holds to say): taken as general knowledge, every customer's record would be given to any
/// asker. A link whose data cannot be read now is added; its fetches check it before anything of
/// it is searched.
pub async fn refuse_unstated_customers(env: &Env, new: &NewLink) -> Result<(), ApiError> {
    let link = &new.link;
    if link.holds != Holds::Unstated || !link.link_type.is_fetchable() || !link.is_active {
        return Ok(());
    }
    let Ok(Some(identified)) =
        knowledge::fetch::identified(env, link, None, http::allows_loopback(env)).await
    else {
        return Ok(());
    };
    let Some((field, kind)) = &identified.proposed else {
        return Ok(());
    };
    let customers = json!({ "type": "customers", "field": field, "key": kind.as_str() });
    Err(ApiError::invalid(
        "holds",
        format!(
            "holds is required for this link: its records name customers ({} in \"{field}\"), and a link \
             without holds would give every customer's record to anyone who asks. Add \"holds\": {customers} \
             to answer each customer from their own record only, or \"holds\": {{\"type\": \"general\"}} if \
             every record is meant for every customer",
            match kind {
                KeyKind::Email => "an email address",
                KeyKind::Phone => "a phone number",
                KeyKind::ExternalId => "a customer id",
                KeyKind::PageScopedId => "a page-scoped id",
            },
        ),
    ))
}
