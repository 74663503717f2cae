//! Erasing a customer, as a person may ask by law (`edge::ops::erasure`): on the operator's path and
//! on the business's, with one of its keys or from the console.

use domain::audit::Action;
use domain::erasure::Status;
use domain::error::ApiError;
use domain::ids::CustomerId;
use edge::platform::audit::Audit;
use edge::platform::call::{Managed, Path};
use edge::runtime::Response;
use edge::{Env, ops::erasure, platform::http};

/// Erases the customer, or says where their erasure stands: 200 once nothing of them is left,
/// 202 while the rest is being deleted. The audit log records who asked, once.
pub async fn erase(
    env: Env,
    audit: Audit,
    Managed(tenant): Managed,
    Path(id): Path<CustomerId>,
) -> Result<Response, ApiError> {
    let db = env.db()?;
    let (begun, erasure) = erasure::erase(&env, &db, &tenant, &id, audit.actor()).await?;
    if begun {
        let detail = serde_json::json!({ "crm": erasure.crm.len() });
        audit
            .record(
                &env,
                &tenant.business_id,
                Action::CustomerErased,
                Some(id.as_str()),
                detail,
            )
            .await;
    }
    let status = match erasure.status {
        Status::Erased => 200,
        Status::Erasing => 202,
    };
    http::json(status, &erasure)
}
