//! The deployment a test runs: a native stack with every function registered under its service
//! binding (as the gateway reaches it), the rate limiter's Durable Object class, the queues'
//! consumers as `functions.toml` declares them, and the calls a client, an operator and the cron
//! make.

use edge::Env;
use edge::platform::queue::{self, Consumer};
use edge::runtime::native::{DurableObject, Stack, block_on};
use edge::runtime::{Context, Method, Request};
use serde_json::Value;
use std::future::Future;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::Duration;

/// The public origin the deployment is configured with (`PUBLIC_BASE_URL`): links it makes
/// point here.
pub const ORIGIN: &str = "https://api.crm-edge.test";
/// Where the tests' requests arrive: another name of the deployment, so that a link built from the
/// request's own URL instead of the configured origin shows.
pub const CALLED: &str = "https://edge.crm-edge.test";
/// The client address the tests' requests come from.
pub const CLIENT_IP: &str = "203.0.113.7";
/// Where the knowledge functions reach the local embedding server (`EMBEDDER_URL`; the `local`
/// RAG backend): answered once a test installs it with [`App::embedder`].
pub const EMBEDDER_HOST: &str = "embedder.crm-edge.test";

/// A deployment in this process.
pub struct App {
    pub stack: Stack,
}

/// A business made through the admin API, with an API key.
#[derive(Debug, Clone)]
pub struct Business {
    pub id: String,
    pub key: String,
}

/// What a request was answered with.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The answer, after checking its status (the body is shown when it is not).
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "answered {}: {}", self.status, self.text());
        self
    }
}

/// Runs a test's body on a new deployment.
pub fn test<F, Fut>(body: F)
where
    F: FnOnce(App) -> Fut,
    Fut: Future<Output = ()>,
{
    let app = App::new();
    block_on(body(app));
}

macro_rules! register_services {
    ($stack:expr, $($binding:literal => $function:ident),* $(,)?) => {
        $(
            $stack.register_service(
                $binding,
                Rc::new(|request| Box::pin(async move { $function::serve(request, Stack::current()).await })),
            );
        )*
    };
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    pub fn new() -> Self {
        let stack = Stack::new();
        stack.set_var("PUBLIC_BASE_URL", ORIGIN);
        // The local stack's backend: Workers AI and Vectorize have no native twin.
        stack.set_var(edge::knowledge::backend::RAG_BACKEND, "local");
        // A key's usage is reported after the request, not 20 s later: the wait would move the
        // native clock on by 20 s with every request.
        stack.set_var("USAGE_REPORT_SECONDS", "0");
        stack.set_var(
            edge::knowledge::backend::EMBEDDER_URL,
            &format!("http://{EMBEDDER_HOST}"),
        );
        register_services!(stack,
            "ADMIN" => admin,
            "BOT" => bot,
            "CONSOLE" => console,
            "CONVERSATIONS" => conversations,
            "CONVERSATIONS_BY_CUSTOMER" => conversations_by_customer,
            "CRM_API" => crm_api,
            "CUSTOMERS" => customers,
            "CUSTOMERS_BATCH_LOOKUP" => customers_batch_lookup,
            "CUSTOMERS_BULK_CREATE" => customers_bulk_create,
            "CUSTOMERS_SYNC" => customers_sync,
            "DOWNLOAD_MEDIA" => download_media,
            "EMBED_INBOX" => embed_inbox,
            "KNOWLEDGE" => knowledge,
            "MESSAGES_SINCE" => messages_since,
            "RECEIVER_CHATWOOT" => receiver_chatwoot,
            "RECEIVER_EMAIL" => receiver_email,
            "RECEIVER_HUBSPOT" => receiver_hubspot,
            "RECEIVER_KUSTOMER" => receiver_kustomer,
            "RECEIVER_META" => receiver_meta,
            "RECEIVER_SALESFORCE" => receiver_salesforce,
            "RECEIVER_TWILIO" => receiver_twilio,
            "SEND_MESSAGE" => send_message,
            "SSO_TOKEN" => sso_token,
            "UPLOAD_ATTACHMENT" => upload_attachment,
            "WEBHOOKS" => webhooks,
        );
        stack.register_object_class(
            "RATE_LIMITER",
            Rc::new(|_name| Rc::new(rate_limiter::Limiter::new(Stack::current())) as Rc<dyn DurableObject>),
        );
        Self { stack }
    }

    /// A request through the gateway, as a client makes it, and whatever work it left for after
    /// its answer.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let mut request = Self::request_to(path, method).with_body(body);
        for (name, value) in headers {
            request = request.with_header(name, value);
        }
        self.send(request).await
    }

    /// A request to `path` of the deployment from the tests' client address, for a test that
    /// writes the rest itself and hands it to [`App::send`].
    pub fn request_to(path: &str, method: Method) -> Request {
        let url = format!("{CALLED}{path}");
        Request::new(&url, method)
            .unwrap_or_else(|error| panic!("{url}: {error}"))
            .with_header("cf-connecting-ip", CLIENT_IP)
    }

    /// Sends `request` through the gateway, then runs whatever work it left for after its answer.
    pub async fn send(&self, request: Request) -> Answer {
        let mut response = gateway::serve(request, self.stack.clone(), Context)
            .await
            .unwrap_or_else(|error| panic!("the gateway failed: {error}"));
        self.stack.run_background().await;
        Answer {
            status: response.status_code(),
            headers: response.headers().entries().collect(),
            body: response.bytes().await.unwrap_or_default(),
        }
    }

    /// A JSON request (or none) with the headers given.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let mut headers = headers.to_vec();
        let body = match body {
            Some(body) => {
                headers.push(("content-type", "application/json"));
                serde_json::to_vec(&body).unwrap_or_default()
            }
            None => Vec::new(),
        };
        self.request(method, path, &headers, body).await
    }

    /// An operator's request, with the admin token.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let bearer = format!("Bearer {}", self.admin_token());
        self.json(method, path, &[("authorization", &bearer)], body).await
    }

    /// A business's request, with its API key.
    pub async fn api(&self, key: &str, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.json(method, path, &[("x-api-key", key)], body).await
    }

    /// The local embedding server the knowledge functions call, answering from now on.
    pub fn embedder(&self) -> crate::partners::embedder::Embedder {
        crate::partners::embedder::Embedder::install(&self.stack, EMBEDDER_HOST)
    }

    pub fn admin_token(&self) -> String {
        self.stack.secret("ADMIN_TOKEN").unwrap_or_default()
    }

    /// A new business (in Ireland), without a rate limit to trip over, and an API key of it.
    pub async fn business(&self, name: &str) -> Business {
        self.business_in(name, Some("IE")).await
    }

    /// [`App::business`] with `default_country` as its default country (`None`: it has none, so
    /// a national phone number cannot be completed).
    pub async fn business_in(&self, name: &str, default_country: Option<&str>) -> Business {
        let mut fields = serde_json::json!({ "name": name });
        if let Some(country) = default_country {
            fields["default_country"] = serde_json::json!(country);
        }
        let created = self
            .admin(Method::Post, "/admin/businesses", Some(fields))
            .await
            .expect(201)
            .json();
        let id = created["id"].as_str().unwrap_or_default().to_owned();
        self.admin(
            Method::Patch,
            &format!("/admin/businesses/{id}"),
            Some(serde_json::json!({ "rate_limit": { "per_minute": 100_000, "burst": 10_000 } })),
        )
        .await
        .expect(200);
        let issued = self
            .admin(
                Method::Post,
                &format!("/admin/businesses/{id}/api-keys"),
                Some(serde_json::json!({ "name": "native" })),
            )
            .await
            .expect(201)
            .json();
        Business {
            id,
            key: issued["key"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// Hands every queue's messages that are due now to their consumers, until none is due;
    /// returns how many deliveries were made. No time passes.
    pub async fn settle(&self) -> usize {
        let mut delivered = 0;
        loop {
            let round = self.deliver_due().await;
            if round == 0 {
                return delivered;
            }
            delivered += round;
        }
    }

    /// [`App::settle`], letting time pass, up to `horizon`, whenever a message waits for its
    /// time (a retry's delay): the clock jumps to the next due message each time.
    pub async fn settle_within(&self, horizon: Duration) -> usize {
        let deadline = self.stack.now_ms() + i64::try_from(horizon.as_millis()).unwrap_or(i64::MAX / 2);
        let mut delivered = self.settle().await;
        while let Some(next) = consumers()
            .iter()
            .filter_map(|consumer| self.stack.next_due(consumer.binding))
            .min()
            .filter(|next| *next <= deadline)
        {
            self.stack.advance(Duration::from_millis(
                u64::try_from(next - self.stack.now_ms()).unwrap_or(0),
            ));
            delivered += self.settle().await;
        }
        delivered
    }

    /// The cron's run: the maintenance sweep.
    pub async fn sweep(&self) {
        edge::ops::maintenance::run_scheduled(Env::new(self.stack.clone(), "cron")).await;
    }

    /// One invocation of the consumer of `binding`: at most one batch of its due messages (for
    /// a consumer of one message a batch, one message), settled as the handler says; how many
    /// were delivered. A test watches a run that goes on over several invocations this way.
    pub async fn deliver_once(&self, binding: &str) -> usize {
        let consumer = consumers()
            .iter()
            .find(|consumer| consumer.binding == binding)
            .unwrap_or_else(|| panic!("functions.toml declares no consumer of {binding}"));
        self.deliver(*consumer, true).await
    }

    async fn deliver_due(&self) -> usize {
        let mut delivered = 0;
        for consumer in consumers() {
            delivered += self.deliver(*consumer, false).await;
        }
        delivered
    }

    async fn deliver(&self, consumer: Consumer<'static>, once: bool) -> usize {
        match consumer.binding {
            "WEBHOOKS" => self.consume(consumer, once, webhook_dispatcher::handle).await,
            "CRM_SYNC" => self.consume(consumer, once, crm_sync::handle).await,
            "OUTBOUND" => {
                self.consume(consumer, once, queue::each(message_dispatcher::handle))
                    .await
            }
            "INBOUND_MEDIA" => {
                self.consume(consumer, once, queue::each(media_fetcher::handle))
                    .await
            }
            "KNOWLEDGE" => {
                self.consume(consumer, once, queue::each(knowledge_fetcher::handle))
                    .await
            }
            "HELD_INBOUND" => {
                self.consume(consumer, once, queue::each(held_inbound::handle))
                    .await
            }
            "BOT" => self.consume(consumer, once, queue::each(bot::handle)).await,
            other => {
                panic!("functions.toml declares a consumer of {other}, which the native app does not know")
            }
        }
    }

    /// Every due message of the consumer's queue (`once`: one batch of them) to `handle`, a
    /// batch at a time.
    async fn consume<T, F, Fut>(&self, consumer: Consumer<'static>, once: bool, handle: F) -> usize
    where
        T: queue::Work,
        F: Fn(Env, Vec<(T, u32)>) -> Fut,
        Fut: Future<Output = Vec<queue::Settle>>,
    {
        if !once {
            return queue::deliver_batches(&self.stack, consumer, handle).await;
        }
        let batch = self.stack.take_due(consumer.binding, consumer.max_batch_size);
        let count = batch.len();
        if count > 0 {
            let env = Env::new(self.stack.clone(), "queue");
            queue::consume_batch(&batch, &env, &handle).await;
            self.stack.settle(consumer.binding, batch, consumer.max_retries);
        }
        count
    }
}

/// The queues' consumers, as `functions.toml` declares them (`[functions.<name>.consumes]`).
pub fn consumers() -> &'static [Consumer<'static>] {
    static CONSUMERS: OnceLock<Vec<Consumer<'static>>> = OnceLock::new();
    CONSUMERS.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../functions.toml");
        let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{path}: {error}"));
        let mut consumers = Vec::new();
        let mut current: Option<(String, usize, u32)> = None;
        let mut finish = |current: Option<(String, usize, u32)>| {
            if let Some((binding, max_batch_size, max_retries)) = current {
                consumers.push(Consumer {
                    binding: Box::leak(binding.into_boxed_str()),
                    max_batch_size,
                    max_retries,
                });
            }
        };
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                finish(current.take());
                let table = line.trim_matches(['[', ']']);
                if table.starts_with("functions.") && table.ends_with(".consumes") {
                    current = Some((String::new(), 0, 0));
                }
                continue;
            }
            let (Some(consumer), Some((key, value))) = (current.as_mut(), line.split_once('=')) else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match key.trim() {
                "queue" => consumer.0 = value.to_owned(),
                "max_batch_size" => consumer.1 = value.parse().unwrap_or(1),
                "max_retries" => consumer.2 = value.parse().unwrap_or(3),
                _ => {}
            }
        }
        finish(current.take());
        consumers
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumers_are_read_from_functions_toml() {
        let bindings: Vec<&str> = consumers().iter().map(|consumer| consumer.binding).collect();
        for binding in ["WEBHOOKS", "CRM_SYNC", "OUTBOUND", "INBOUND_MEDIA", "KNOWLEDGE"] {
            assert!(bindings.contains(&binding), "{bindings:?}");
        }
        let webhooks = consumers().iter().find(|consumer| consumer.binding == "WEBHOOKS");
        assert_eq!(
            webhooks.map(|consumer| (consumer.max_batch_size, consumer.max_retries)),
            Some((50, 5))
        );
    }

    #[test]
    fn the_gateway_answers_health_and_a_business_is_made_through_the_admin_api() {
        test(|app| async move {
            let health = app
                .request(Method::Get, "/health", &[], Vec::new())
                .await
                .expect(200);
            assert_eq!(health.json()["status"], "ok");
            let business = app.business("Acme").await;
            assert!(business.key.starts_with("cek_"), "{business:?}");
            let answer = app
                .api(
                    &business.key,
                    Method::Get,
                    "/api-customers?external_id=nobody",
                    None,
                )
                .await;
            assert_eq!(answer.status, 404, "{}", answer.text());
        });
    }
}
