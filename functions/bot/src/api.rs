//! The bot's dashboard endpoints. Each names a page of the business and one channel; another
//! business's page is a 404.

use domain::api::bots::{AnswersOut, BotOut, KpisOut, PickedCustomer, PickedOut, TurnOut};
use domain::audit::Action;
use domain::bot::settings::{BotSettings, BotSettingsIn};
use domain::bot::target::{BotChannel, BotTarget, TryIn};
use domain::channel::Channel;
use domain::error::ApiError;
use domain::ids::MessageId;
use domain::json::members;
use domain::lookup::CustomerKey;
use domain::query::Query;
use domain::tenant::Tenant;
use edge::Env;
use edge::bot::{self, Asked, Did};
use edge::db::channel_accounts::own_page;
use edge::db::{self, Db, bot_answers, bots, knowledge_links};
use edge::platform::audit::Audit;
use edge::platform::call::Json;
use edge::runtime;
use serde_json::Value;

/// Turns per page of the log, by default and at most.
const DEFAULT_ANSWERS: usize = 50;
const MAX_ANSWERS: usize = 100;

fn target_of(query: &Query) -> Result<BotTarget, ApiError> {
    BotTarget::parse(|name| query.get(name).map(Value::from))
}

/// The bot's settings and when they were set; the defaults (disabled) for a bot never set.
async fn settings_of(
    db: &Db,
    tenant: &Tenant,
    target: &BotTarget,
) -> Result<(BotSettings, Option<String>), ApiError> {
    Ok(match bots::find(db, tenant, target).await? {
        Some(bot) => (bot.settings, Some(bot.updated_at)),
        None => (BotSettingsIn::default().validate()?, None),
    })
}

/// The page's bot, with its links counted.
async fn bot_out(db: &Db, tenant: &Tenant, target: &BotTarget) -> Result<BotOut, ApiError> {
    let (settings, updated_at) = settings_of(db, tenant, target).await?;
    let active_links = knowledge_links::active_sources(db, tenant, &target.page_id, target.channel.links())
        .await?
        .len();
    Ok(BotOut {
        page_id: target.page_id.as_str().to_owned(),
        channel: target.channel.as_str(),
        settings: settings.written(),
        active_links,
        updated_at,
    })
}

/// `GET /api/dashboard/bots?page_id=&channel=`
pub async fn get(tenant: Tenant, env: Env, query: Query) -> Result<Json<BotOut>, ApiError> {
    let target = target_of(&query)?;
    let db = env.db()?;
    own_page(&db, &tenant, &target.page_id).await?;
    Ok(Json(bot_out(&db, &tenant, &target).await?))
}

/// `PUT /api/dashboard/bots {page_id, channel, settings}`
pub async fn set(
    tenant: Tenant,
    env: Env,
    audit: Audit,
    Json(body): Json<Value>,
) -> Result<Json<BotOut>, ApiError> {
    let members = members(&body, &["page_id", "channel", "settings"], "bot")?;
    let target = BotTarget::parse(|name| members.get(name).filter(|value| !value.is_null()).cloned())?;
    let input = members
        .get("settings")
        .filter(|value| value.is_object())
        .ok_or_else(|| ApiError::invalid("settings", "settings must be an object"))?;
    let settings = BotSettings::parse(input).map_err(|mut error| {
        error.body.field = error.body.field.map(|field| format!("settings.{field}"));
        error
    })?;
    if let Some(hours) = &settings.hours
        && runtime::local_time(&hours.time_zone, runtime::now()).is_none()
    {
        return Err(ApiError::invalid(
            "settings.hours.time_zone",
            format!(
                "{} is not a time zone this runtime knows (IANA names, such as Europe/Dublin)",
                hours.time_zone
            ),
        ));
    }
    let db = env.db()?;
    own_page(&db, &tenant, &target.page_id).await?;
    bots::put(&db, &tenant, &target, &settings, &runtime::now().to_rfc3339()).await?;
    let name = format!("{}/{}", target.page_id.as_str(), target.channel.as_str());
    audit
        .record_update(&env, &tenant.business_id, Action::BotUpdated, &name, input)
        .await;
    Ok(Json(bot_out(&db, &tenant, &target).await?))
}

/// `POST /api/dashboard/bots/try {page_id, channel, question, customer_id?}`: the bot's turn as
/// that customer, in a fresh conversation, with nothing sent; logged as a try.
pub async fn ask(tenant: Tenant, env: Env, Json(body): Json<Value>) -> Result<Json<TurnOut>, ApiError> {
    let asked = TryIn::parse(&body)?;
    let db = env.db()?;
    let (db, tenant, env) = (&db, &tenant, &env);
    own_page(db, tenant, &asked.target.page_id).await?;
    let customer = match &asked.customer_id {
        None => None,
        Some(id) => Some(
            db::customers::find_one(db, tenant, &CustomerKey::Id(id.clone()))
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no customer {id}")))?,
        ),
    };
    let page_scoped_id = match &customer {
        None => None,
        Some(customer) => {
            db::customer_identities::latest_address(db, tenant, &customer.id, Channel::Facebook).await?
        }
    };
    let (mut settings, _) = settings_of(db, tenant, &asked.target).await?;
    // A try asks what the bot would say: a disabled bot is tried as if it were enabled.
    settings.enabled = true;
    // On the `facebook` channel, a try is a comment under one of the page's posts.
    let comment = match asked.target.channel {
        BotChannel::Facebook => Some(bot::comment_reply(db, tenant, &asked.target.page_id, &settings).await?),
        BotChannel::Messenger => None,
    };
    let started = runtime::now();
    let outcome = bot::think(
        env,
        db,
        tenant,
        &Asked {
            target: &asked.target,
            settings: &settings,
            customer: customer.as_ref(),
            page_scoped_id: page_scoped_id.as_deref(),
            question: &asked.question,
            history: &[],
            conversation: Default::default(),
            comment,
        },
    )
    .await?;
    let total_ms = u64::try_from(runtime::now().millis() - started.millis()).unwrap_or(0);
    let id = MessageId::generate(runtime::random()?);
    let created_at = runtime::now().to_rfc3339();
    let turn = bot_answers::NewTurn {
        customer_id: asked.customer_id.as_ref(),
        ..outcome.logged(id.as_str(), &asked.target, &asked.question, total_ms, &created_at)
    };
    bot_answers::insert(db, tenant, &turn)?.run().await?;
    Ok(Json(TurnOut {
        id: id.to_string(),
        action: outcome.did.as_str(),
        reason: outcome.reason,
        text: (outcome.did != Did::Silent).then_some(outcome.text).flatten(),
        public_text: outcome.public_text,
        pieces: outcome.pieces,
        refusals: outcome.refusals,
        model: outcome.model,
        generator_ms: outcome.generator_ms,
        total_ms,
    }))
}

/// Customers a try box offers at most.
const MOST_PICKED: usize = 10;

/// `GET /api/dashboard/bots/customers?q=`
pub async fn pick(tenant: Tenant, env: Env, query: Query) -> Result<Json<PickedOut>, ApiError> {
    let typed = query
        .get("q")
        .map(str::trim)
        .filter(|typed| !typed.is_empty())
        .ok_or_else(|| ApiError::invalid("q", "q is required: the start of a name, or an email"))?;
    if typed.chars().count() > 200 {
        return Err(ApiError::invalid("q", "q is longer than 200 characters"));
    }
    let db = env.db()?;
    let customers = db::customers::picked_by(&db, &tenant, typed, MOST_PICKED)
        .await?
        .into_iter()
        .map(|customer| PickedCustomer {
            id: customer.id.to_string(),
            name: Some(customer.name).filter(|name| !name.is_empty()),
            email: customer.email,
        })
        .collect();
    Ok(Json(PickedOut { customers }))
}

/// `GET /api/dashboard/bots/answers?page_id=&channel=&limit=&before=`
pub async fn answers(tenant: Tenant, env: Env, query: Query) -> Result<Json<AnswersOut>, ApiError> {
    let target = target_of(&query)?;
    let limit = match query.get("limit") {
        None => DEFAULT_ANSWERS,
        Some(limit) => limit
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_ANSWERS).contains(limit))
            .ok_or_else(|| ApiError::invalid("limit", format!("limit must be 1 to {MAX_ANSWERS}")))?,
    };
    let before = query.get("before").filter(|before| !before.is_empty());
    let db = env.db()?;
    own_page(&db, &tenant, &target.page_id).await?;
    let answers = bot_answers::list(&db, &tenant, &target, limit + 1, before).await?;
    let more = answers.len() > limit;
    let answers: Vec<_> = answers.into_iter().take(limit).collect();
    Ok(Json(AnswersOut {
        next_before: more.then(|| answers.last().map(|last| last.id.clone())).flatten(),
        answers,
    }))
}

/// `GET /api/dashboard/bots/kpis?page_id=&channel=&days=`
pub async fn kpis(tenant: Tenant, env: Env, query: Query) -> Result<Json<KpisOut>, ApiError> {
    let target = target_of(&query)?;
    let days = match query.get("days") {
        None => 7,
        Some("7") => 7,
        Some("30") => 30,
        Some(_) => return Err(ApiError::invalid("days", "days must be 7 or 30")),
    };
    let db = env.db()?;
    own_page(&db, &tenant, &target.page_id).await?;
    let since = runtime::now()
        .plus_seconds(-i64::from(days) * 86_400)
        .to_rfc3339();
    Ok(Json(
        bot_answers::kpis(&db, &tenant, &target, days, &since).await?,
    ))
}
