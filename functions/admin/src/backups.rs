//! `POST /admin/businesses/{id}/backup`: a page of a business's export, and
//! `POST /admin/businesses/{id}/restore`: a page of its restore where it does not exist
//! (`edge::backup`; docs/operations.md, "Backups and recovery").

use domain::api::admin::{BackupIn, BackupOut, RestoreIn, RestoreOut};
use domain::backup::Cursor;
use domain::error::ApiError;
use domain::ids::BusinessId;
use edge::Env;
use edge::call::{Json, Managed, Path};
use edge::{DB, runtime};

pub async fn export(
    env: Env,
    Managed(tenant): Managed,
    Json(body): Json<BackupIn>,
) -> Result<Json<BackupOut>, ApiError> {
    let cursor = body
        .cursor
        .as_deref()
        .map(Cursor::parse)
        .transpose()
        .map_err(|why| ApiError::invalid("cursor", why))?;
    let db = env.d1(DB)?;
    edge::backup::export_page(&env, &db, &tenant.business_id, cursor, runtime::now())
        .await
        .map(Json)
}

/// Takes the business from the path, not `Managed`: the business it names does not exist yet.
pub async fn restore(
    env: Env,
    Path(business): Path<BusinessId>,
    Json(page): Json<RestoreIn>,
) -> Result<Json<RestoreOut>, ApiError> {
    let db = env.d1(DB)?;
    edge::backup::restore_page(&env, &db, &business, &page, runtime::now().millis())
        .await
        .map(Json)
}
