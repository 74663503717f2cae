//! The CRM links guide's link endpoints: list, add, change status, delete, every page's links, and
//! a refresh now. A link added for several channels is one source (fetched once) with an entry per
//! channel, and the counts are the entries', as the guide counts them.

use crate::own_page;
use crate::{holds, view};
use domain::api::links::{
    AddedOut, AllOut, CrmLinkView, DeletedOut, LinksOut, PageLinks, RefreshOut, StatusOut,
};
use domain::audit::Action;
use domain::bot::subject::Holds;
use domain::crm::health::{WINDOW_HOURS, Window};
use domain::destination::Destination;
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::links::fetch::State;
use domain::links::link::{Addressed, LinkChannel, LinkSecret, NewLink, PageId, Target, redact_url};
use domain::query::Query;
use domain::tenant::Tenant;
use domain::webhook_signing::WebhookSecret;
use edge::Env;
use edge::console_log;
use edge::db::Db;
use edge::db::knowledge_links::{self, Entry};
use edge::db::knowledge_sources::{self, Asked, Caps, Due, Fields, Source};
use edge::db::{businesses, channel_accounts, crm_call_minutes, knowledge_chunks};
use edge::knowledge::backend::Rag;
use edge::platform::audit::Audit;
use edge::platform::call::{Accepted, Created, Json, Origin};
use edge::runtime::Internal;
use edge::{knowledge, platform::http, runtime};
use serde_json::{Value, json};
use std::collections::HashMap;
/// CRM links a business may have, and a page: each is fetched on its own schedule, and a page's
/// links are searched together (Vectorize's filter lists them all, under 2 KiB).
pub const MAX_LINKS_PER_BUSINESS: i64 = 50;
pub const MAX_LINKS_PER_PAGE: i64 = 20;
/// Refreshes a link may be asked for in an hour (429 past them, until the hour ends). Refreshes
/// asked while a fetch is queued or running are one fetch besides.
const MAX_REFRESHES_PER_HOUR: i64 = 30;
/// Vectors deleted per call when a link goes.
const VECTOR_DELETE_STEP: usize = 1_000;

fn page_param(query: &Query) -> Result<PageId, ApiError> {
    let page = query
        .get("page_id")
        .ok_or_else(|| ApiError::invalid("page_id", "page_id is required"))?;
    PageId::parse(&Value::from(page))
}

fn channel_param(query: &Query) -> Result<Option<LinkChannel>, ApiError> {
    match query.get("channel").filter(|value| !value.is_empty()) {
        None => Ok(None),
        Some(name) => LinkChannel::parse(name).map(Some).ok_or_else(|| {
            ApiError::invalid(
                "channel",
                format!(
                    "channel must be one of {}",
                    LinkChannel::ALL.map(LinkChannel::as_str).join(", ")
                ),
            )
        }),
    }
}

/// Entries as the guide shows them.
pub(crate) struct Shown<'a> {
    sources: HashMap<SourceId, Source>,
    entries: Vec<Entry>,
    /// Each link's fetches in the health window, by its source's id.
    calls: HashMap<String, Window>,
    origin: &'a str,
}

impl Shown<'_> {
    pub(crate) fn views(&self, filter: impl Fn(&Entry) -> bool) -> Vec<CrmLinkView> {
        self.entries
            .iter()
            .filter(|entry| filter(entry))
            .filter_map(|entry| {
                let source = self.sources.get(&entry.source_id)?;
                let channels = view::channels_of(&self.entries, source);
                Some(view::entry(
                    source,
                    entry.channel,
                    entry.is_active,
                    &channels,
                    self.calls.get(source.id.as_str()),
                    self.origin,
                ))
            })
            .collect()
    }
}

pub(crate) async fn shown<'a>(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    page: Option<&PageId>,
    origin: &'a str,
) -> Result<Shown<'a>, ApiError> {
    let keys = env.keyring()?;
    let sources = knowledge_sources::list(db, &keys, tenant, page).await?;
    let entries = knowledge_links::list(db, tenant, page, None).await?;
    let since = runtime::now().millis() - i64::from(WINDOW_HOURS) * 3_600_000;
    let calls = crm_call_minutes::windows(db, tenant, since).await?;
    Ok(Shown {
        calls,
        sources: sources
            .into_iter()
            .map(|source| (source.id.clone(), source))
            .collect(),
        entries,
        origin,
    })
}

fn counts(views: &[CrmLinkView]) -> (usize, usize) {
    let active = views.iter().filter(|view| view.settings.is_active).count();
    (active, views.len() - active)
}

/// `GET /api/dashboard/crm-links?page_id=&channel=`
pub async fn list(
    tenant: Tenant,
    env: Env,
    query: Query,
    Origin(origin): Origin,
) -> Result<Json<LinksOut>, ApiError> {
    let page = page_param(&query)?;
    let channel = channel_param(&query)?;
    let db = env.db()?;
    own_page(&db, &tenant, &page).await?;
    let shown = shown(&env, &db, &tenant, Some(&page), &origin).await?;
    let views = shown.views(|entry| channel.is_none_or(|channel| entry.channel == channel));
    let (active, inactive) = counts(&views);
    Ok(Json(LinksOut {
        crm_links: views,
        page_id: page.as_str().to_owned(),
        channel: channel.map(LinkChannel::as_str),
        total: active + inactive,
        active_count: active,
        inactive_count: inactive,
    }))
}

/// `POST /api/dashboard/crm-links`
pub async fn add(
    tenant: Tenant,
    env: Env,
    audit: Audit,
    Origin(origin): Origin,
    Json(input): Json<Value>,
) -> Result<Created<AddedOut>, ApiError> {
    let (env, tenant) = (&env, &tenant);
    let mut new = NewLink::parse(&input, http::allows_loopback(env))?;
    let db = env.db()?;
    own_page(&db, tenant, &new.page_id).await?;
    let keys = env.keyring()?;
    let now = runtime::now().to_rfc3339();
    let url = new.link.url.as_str().to_owned();
    let taken = |channel: LinkChannel| {
        ApiError::conflict(format!(
            "page {} already has {url} on {channel}: change it with PUT /api/dashboard/crm-links/status, or delete it first",
            new.page_id.as_str()
        ))
    };
    let mut webhook_secret = None;
    let id = match knowledge_sources::find_by_url(&db, &keys, tenant, &new.page_id, &url).await? {
        Some(source) => {
            // Added on more channels without saying whose data it is: it stays what it was said.
            if new.link.holds == Holds::Unstated {
                new.link.holds = source.link.holds.clone();
            }
            let entries = knowledge_links::list(&db, tenant, Some(&new.page_id), None).await?;
            if let Some(channel) = new
                .channels
                .iter()
                .find(|channel| view::channels_of(&entries, &source).contains(channel))
            {
                return Err(taken(*channel));
            }
            knowledge_sources::update_settings(&db, &keys, tenant, &source, &new.link, &now).await?;
            // Its pieces' subjects change with what it holds: they are indexed again.
            if source.link.holds != new.link.holds
                && new.link.link_type.is_indexed()
                && knowledge_sources::ask(&db, tenant, &source.id, &now).await? == Asked::New
            {
                knowledge::hand_over(env, &[due(tenant, &source.id)]).await;
            }
            source.id
        }
        None => {
            within_caps(&db, tenant, &new.page_id).await?;
            holds::refuse_unstated_customers(env, &new).await?;
            let id = SourceId::generate(runtime::random()?);
            let is_webhook = new.link.link_type == domain::links::link::LinkType::Webhook;
            webhook_secret = is_webhook
                .then(|| {
                    runtime::random::<24>()
                        .map(|random| LinkSecret::stored(WebhookSecret::generate(random).as_str().to_owned()))
                })
                .transpose()?;
            let state = if new.link.link_type.is_fetchable() || is_webhook {
                State::Pending
            } else {
                State::NotFetched
            };
            let fields = Fields {
                link: &new.link,
                state,
                next_fetch_at: None,
                webhook_secret: webhook_secret.as_ref(),
            };
            let caps = Caps {
                of_business: MAX_LINKS_PER_BUSINESS,
                of_page: MAX_LINKS_PER_PAGE,
            };
            let page = &new.page_id;
            if !knowledge_sources::insert_within(&db, &keys, tenant, &id, page, &fields, &now, caps).await? {
                // Another add took the last place meanwhile, or the URL.
                within_caps(&db, tenant, page).await?;
                return Err(taken(new.channels[0]));
            }
            id
        }
    };
    if !knowledge_links::insert(
        &db,
        tenant,
        &id,
        &new.page_id,
        &new.channels,
        new.link.is_active,
        &now,
    )
    .await?
    {
        return Err(taken(new.channels[0]));
    }
    if knowledge_sources::reschedule(&db, tenant, &id, &now).await? {
        knowledge::hand_over(env, &[due(tenant, &id)]).await;
    }
    let shown_url = redact_url(&url);
    console_log!(
        "CRM link added successfully: page {}, {shown_url}, link {id}",
        new.page_id.as_str()
    );
    let detail =
        json!({ "page_id": new.page_id.as_str(), "url": shown_url, "channels": names(&new.channels) });
    audit
        .record(
            env,
            &tenant.business_id,
            Action::CrmLinkAdded,
            Some(id.as_str()),
            detail,
        )
        .await;
    let shown = shown(env, &db, tenant, Some(&new.page_id), &origin).await?;
    let mut crm_link = shown
        .views(|entry| entry.source_id == id && new.channels.contains(&entry.channel))
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("adding a CRM link", "the link just added is not listed"))?;
    // Shown once, here: the CRM signs its pushes with it.
    crm_link.webhook_secret = webhook_secret.as_ref().map(|secret| secret.expose().to_owned());
    Ok(Created(AddedOut {
        message: "CRM link added successfully",
        crm_link,
        channels: names(&new.channels),
        page_id: new.page_id.as_str().to_owned(),
    }))
}

pub(crate) fn due(tenant: &Tenant, id: &SourceId) -> Due {
    Due::asked(tenant, id)
}

/// The source a target names, and the channels it means (those given, or every one it is on).
/// The page's link `id` and the channels it is on; 404 when the page has no such link.
pub(crate) async fn targeted_by_id(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    page: &PageId,
    id: &SourceId,
) -> Result<(Source, Vec<LinkChannel>), ApiError> {
    let target = Target {
        page_id: page.clone(),
        link: Addressed::Id(id.clone()),
        channels: None,
        is_active: None,
    };
    targeted(env, db, tenant, &target).await
}

async fn targeted(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    target: &Target,
) -> Result<(Source, Vec<LinkChannel>), ApiError> {
    own_page(db, tenant, &target.page_id).await?;
    let keys = env.keyring()?;
    let missing = || {
        ApiError::not_found(match &target.link {
            Addressed::Id(id) => format!("page {} has no CRM link {id}", target.page_id.as_str()),
            Addressed::Url(url) => format!(
                "page {} has no CRM link with the url {}",
                target.page_id.as_str(),
                redact_url(url)
            ),
        })
    };
    let source = match &target.link {
        Addressed::Id(id) => knowledge_sources::find(db, &keys, tenant, id)
            .await?
            .filter(|source| source.page_id == target.page_id),
        Addressed::Url(url) => {
            // The URL as it was stored: written the way the destination rule writes URLs.
            let url = Destination::parse("url", url, true)
                .map_or_else(|_| url.clone(), |url| url.as_str().to_owned());
            knowledge_sources::find_by_url(db, &keys, tenant, &target.page_id, &url).await?
        }
    }
    .ok_or_else(missing)?;
    let entries = knowledge_links::list(db, tenant, Some(&target.page_id), None).await?;
    let present = view::channels_of(&entries, &source);
    let channels = match &target.channels {
        None => present,
        Some(given) => given
            .iter()
            .copied()
            .filter(|channel| present.contains(channel))
            .collect(),
    };
    if channels.is_empty() {
        return Err(missing());
    }
    Ok((source, channels))
}

/// The URL an answer names the targeted link by: the one given, or, for a link named by its id,
/// the stored one as views show it (credentials masked).
fn answered_url(target: &Target, source: &Source) -> String {
    match &target.link {
        Addressed::Url(url) => url.clone(),
        Addressed::Id(_) => redact_url(source.link.url.as_str()),
    }
}

fn names(channels: &[LinkChannel]) -> Vec<&'static str> {
    channels.iter().map(|channel| channel.as_str()).collect()
}

/// `PUT /api/dashboard/crm-links/status`
pub async fn set_status(
    tenant: Tenant,
    env: Env,
    Json(input): Json<Value>,
) -> Result<Json<StatusOut>, ApiError> {
    let (env, tenant) = (&env, &tenant);
    let target = Target::parse(&input, true)?;
    let is_active = target.is_active.unwrap_or_default();
    let db = env.db()?;
    let (source, channels) = targeted(env, &db, tenant, &target).await?;
    let now = runtime::now().to_rfc3339();
    let updated = knowledge_links::set_active(&db, tenant, &source.id, &channels, is_active, &now).await?;
    if knowledge_sources::reschedule(&db, tenant, &source.id, &now).await? {
        knowledge::hand_over(env, &[due(tenant, &source.id)]).await;
    }
    Ok(Json(StatusOut {
        message: "CRM link status updated successfully",
        updated_count: updated,
        url: answered_url(&target, &source),
        channels: names(&channels),
        is_active,
    }))
}

/// `DELETE /api/dashboard/crm-links`: the entries go; a source left on no channel goes with its
/// data (and its vectors, from Vectorize too).
pub async fn delete(
    tenant: Tenant,
    env: Env,
    audit: Audit,
    Json(input): Json<Value>,
) -> Result<Json<DeletedOut>, ApiError> {
    let (env, tenant) = (&env, &tenant);
    let target = Target::parse(&input, false)?;
    let db = env.db()?;
    let (source, channels) = targeted(env, &db, tenant, &target).await?;
    let (deleted, left) = knowledge_links::delete(&db, tenant, &source.id, &channels).await?;
    if left == 0 {
        // The vectors go first, a thousand at a time: a piece whose vector is gone is not found,
        // a vector whose piece is gone would be.
        let rag = Rag::from_env(env)?;
        let mut after = 0;
        loop {
            let (ids, last) =
                knowledge_chunks::ids_after(&db, tenant, &source.id, after, VECTOR_DELETE_STEP).await?;
            if ids.is_empty() {
                break;
            }
            rag.delete(&ids).await.map_err(|why| {
                ApiError::unavailable(format!("deleting the link's vectors failed: {why}"), 5)
            })?;
            after = last;
        }
        knowledge_sources::delete(&db, tenant, &source.id).await?;
        if let Some(key) = &source.pushed_key {
            env.bucket_write(knowledge::PUSHED)
                .internal("R2")?
                .delete(key)
                .await
                .internal("R2")?;
        }
    } else {
        knowledge_sources::reschedule(&db, tenant, &source.id, &runtime::now().to_rfc3339()).await?;
    }
    let detail = json!({ "url": redact_url(&answered_url(&target, &source)), "channels": names(&channels) });
    audit
        .record(
            env,
            &tenant.business_id,
            Action::CrmLinkDeleted,
            Some(source.id.as_str()),
            detail,
        )
        .await;
    Ok(Json(DeletedOut {
        message: "CRM link deleted successfully",
        deleted_count: deleted,
        url: answered_url(&target, &source),
        channels: names(&channels),
    }))
}

/// `POST /api/dashboard/crm-links/refresh`: fetch now, in the background.
pub async fn refresh(
    tenant: Tenant,
    env: Env,
    Json(input): Json<Value>,
) -> Result<Accepted<RefreshOut>, ApiError> {
    let (env, tenant) = (&env, &tenant);
    let target = Target::parse(&input, false)?;
    let db = env.db()?;
    let (source, _) = targeted(env, &db, tenant, &target).await?;
    if !source.link.is_active {
        return Err(ApiError::conflict(
            "the link is inactive on every channel: activate it first",
        ));
    }
    if !source.link.link_type.is_fetchable() {
        return Err(ApiError::conflict(format!(
            "a {} link is not fetched: {}",
            source.link.link_type.as_str(),
            if source.webhook_secret.is_some() {
                "its CRM pushes its data"
            } else {
                "database links are not built yet"
            }
        )));
    }
    let now = runtime::now();
    let stamp = now.to_rfc3339();
    // `2026-11-24T09`: the hour the refresh counts in.
    let hour = stamp.get(..13).unwrap_or(&stamp);
    if !knowledge_sources::take_refresh(&db, tenant, &source.id, hour, MAX_REFRESHES_PER_HOUR).await? {
        let into_hour = now.seconds().rem_euclid(3600);
        return Err(ApiError::rate_limited(
            format!(
                "this link was refreshed {MAX_REFRESHES_PER_HOUR} times this hour, the most it may be; it is still \
                 fetched on its schedule"
            ),
            u32::try_from(3600 - into_hour).unwrap_or(3600),
        ));
    }
    let message = match knowledge_sources::ask(&db, tenant, &source.id, &now.to_rfc3339()).await? {
        Asked::New => {
            knowledge::hand_over(env, &[due(tenant, &source.id)]).await;
            "CRM link refresh queued"
        }
        Asked::Pending if source.run.is_some() => {
            "CRM link refresh queued: a fetch is running now; another follows it"
        }
        Asked::Pending => "CRM link refresh queued already",
    };
    Ok(Accepted(RefreshOut {
        message,
        url: redact_url(&answered_url(&target, &source)),
    }))
}

/// `GET /api/dashboard/crm-links/all`: every Facebook page of the business with its links by
/// channel.
pub async fn all(tenant: Tenant, env: Env, Origin(origin): Origin) -> Result<Json<AllOut>, ApiError> {
    let (env, tenant) = (&env, &tenant);
    let db = env.db()?;
    let business = businesses::find(&db, &tenant.business_id)
        .await?
        .ok_or_else(|| ApiError::internal("listing CRM links", "the caller's business is gone"))?;
    let shown = shown(env, &db, tenant, None, &origin).await?;
    let mut pages_data = Vec::new();
    let (mut total_active, mut total_inactive) = (0, 0);
    for (page_id, page_name) in channel_accounts::facebook_pages(&db, tenant).await? {
        let on =
            |channel: LinkChannel| shown.views(|entry| entry.page_id == page_id && entry.channel == channel);
        let (facebook, messenger, instagram, whatsapp) = (
            on(LinkChannel::Facebook),
            on(LinkChannel::Messenger),
            on(LinkChannel::Instagram),
            on(LinkChannel::Whatsapp),
        );
        let (mut active, mut inactive) = (0, 0);
        for views in [&facebook, &messenger, &instagram, &whatsapp] {
            let (on, off) = counts(views);
            active += on;
            inactive += off;
        }
        total_active += active;
        total_inactive += inactive;
        pages_data.push(PageLinks {
            page_id,
            page_name,
            facebook_crm_links: facebook,
            messenger_crm_links: messenger,
            instagram_crm_links: instagram,
            whatsapp_crm_links: whatsapp,
            legacy_crm_links: Vec::new(),
            total_active: active,
            total_inactive: inactive,
        });
    }
    Ok(Json(AllOut {
        company_id: business.id,
        company_name: business.name,
        total_pages: pages_data.len(),
        pages_data,
        total_crm_links: total_active + total_inactive,
        total_active,
        total_inactive,
    }))
}

/// 409 when the business, or the page, has as many links as it may.
async fn within_caps(db: &Db, tenant: &Tenant, page: &PageId) -> Result<(), ApiError> {
    let (of_business, of_page) = knowledge_sources::counts(db, tenant, page).await?;
    if of_business >= MAX_LINKS_PER_BUSINESS {
        return Err(ApiError::conflict(format!(
            "this business has {MAX_LINKS_PER_BUSINESS} CRM links, the most it may have: delete one first"
        )));
    }
    if of_page >= MAX_LINKS_PER_PAGE {
        return Err(ApiError::conflict(format!(
            "page {} has {MAX_LINKS_PER_PAGE} CRM links, the most a page may have: delete one first",
            page.as_str()
        )));
    }
    Ok(())
}
