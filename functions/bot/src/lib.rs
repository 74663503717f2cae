//! The bot: its dashboard API (a page's bot per channel, a try as a customer would ask, its log
//! and KPIs) with the business's API key or console session, and the consumer of `crm-edge-bot`,
//! which takes the bot's turn for each customer message the receivers hand it
//! (`edge::bot::answer_message`).

mod api;

use domain::api::bots::{BOT, Bot};
use edge::bot::BotTask;
use edge::platform::queue::Settle;
use edge::runtime::{Bindings, Request, Response};
use edge::{Env, console_error, platform::call};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(&BOT, req, bindings, async |operation, call| match operation {
        Bot::GetBot => call.run(api::get).await,
        Bot::SetBot => call.run(api::set).await,
        Bot::TryBot => call.run(api::ask).await,
        Bot::PickBotCustomers => call.run(api::pick).await,
        Bot::ListBotAnswers => call.run(api::answers).await,
        Bot::GetBotKpis => call.run(api::kpis).await,
    })
    .await
}

/// Our own failures (D1 unavailable) are retried by the queue after this long.
const OWN_FAULT_RETRY_SECONDS: u32 = 10;

/// One customer message's turn. `delivery_count` is the queue's attempt, from 1.
pub async fn handle(env: Env, task: BotTask, delivery_count: u32) -> Settle {
    match edge::bot::answer_message(&env, &task, delivery_count.max(1)).await {
        Ok(settle) => settle,
        Err(error) => {
            console_error!(
                "the bot's turn for message {} failed on our side: {}",
                task.message_id,
                error.detail().unwrap_or(&error.body.message)
            );
            Settle::RetryIn(OWN_FAULT_RETRY_SECONDS)
        }
    }
}

edge::queue_consumer!(edge::bot::BotTask, handle);
