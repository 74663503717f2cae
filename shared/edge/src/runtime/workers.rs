//! The Workers runtime: `worker`'s own types where they serve, and the few calls made on the
//! runtime's JavaScript objects directly, each because `worker`'s wrapper costs every bundle code
//! it does not need (KV's serde-built options, the queue batch's unwrapping) or hides what we read
//! (a message's `attempts`).

use crate::runtime::{Body, Param};
use worker::Method;
use worker::js_sys::{self, Array, Function, Object, Promise, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{self, AesGcmParams, Crypto, CryptoKey};
use worker::worker_sys::{Message, MessageBatch};
use worker::{BatchMessageBuilder, QueueContentType, RawMessageBuilder};

pub use worker::{
    AbortController, AbortSignal, Bucket, ByteStream, Context, D1Database, D1PreparedStatement, D1Result,
    Data, Delay, Fetch, Fetcher, FixedLengthStream, FormData, FormEntry, Headers, ObjectNamespace, Request,
    Response,
};

/// The bindings of the function: its D1 databases, KV namespaces, buckets, queues, services,
/// Durable Object namespaces, variables and secrets.
#[derive(Clone)]
pub struct Bindings(worker::Env);

impl From<worker::Env> for Bindings {
    fn from(env: worker::Env) -> Self {
        Self(env)
    }
}

impl Bindings {
    /// The variable `name`, if set.
    pub fn var(&self, name: &str) -> Option<String> {
        self.text(name)
    }

    /// The secret `name`, if set.
    pub fn secret(&self, name: &str) -> Option<String> {
        self.text(name)
    }

    /// A variable or a secret: both are bound as strings, read off the bindings as they are
    /// (`worker::Env::var` checks the value's constructor by name and formats its errors, and its
    /// `Var` is turned into a `String` through `Display`: 1 KB of code for the same answer).
    fn text(&self, name: &str) -> Option<String> {
        Reflect::get(&self.0, &JsValue::from_str(name)).ok()?.as_string()
    }

    pub fn d1(&self, name: &str) -> worker::Result<D1Database> {
        self.0.d1(name)
    }

    pub fn kv(&self, name: &str) -> worker::Result<Kv> {
        let binding = Reflect::get(&self.0, &JsValue::from_str(name))?;
        if binding.is_object() {
            Ok(Kv(binding))
        } else {
            Err(worker::Error::JsError(format!(
                "no KV namespace is bound as {name}"
            )))
        }
    }

    pub fn queue(&self, name: &str) -> worker::Result<Queue> {
        self.0.queue(name).map(Queue)
    }

    pub fn bucket(&self, name: &str) -> worker::Result<Bucket> {
        self.0.bucket(name)
    }

    pub fn service(&self, name: &str) -> worker::Result<Fetcher> {
        self.0.service(name)
    }

    pub fn assets(&self, name: &str) -> worker::Result<Fetcher> {
        self.0.assets(name)
    }

    pub fn durable_object(&self, name: &str) -> worker::Result<ObjectNamespace> {
        self.0.durable_object(name)
    }

    /// The binding itself, for the runtime's services we call through JavaScript (Vectorize).
    pub fn js(&self, name: &str) -> Option<JsValue> {
        Reflect::get(&self.0, &JsValue::from_str(name))
            .ok()
            .filter(|binding| !binding.is_undefined() && !binding.is_null())
    }

    /// Workers AI, bound as `name`.
    pub fn ai(&self, name: &str) -> worker::Result<worker::Ai> {
        self.0.ai(name)
    }
}

/// Pages of R2's list a [`keys_stored_before`] walks at most (1,000 keys a page).
const LIST_PAGES: usize = 5;

/// Up to `limit` keys of `bucket` under `prefix` that were stored before `before_ms`: R2's list (in
/// key order, not by age) walked for at most [`LIST_PAGES`] pages.
pub async fn keys_stored_before(
    bucket: &Bucket,
    prefix: &str,
    before_ms: i64,
    limit: usize,
) -> worker::Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..LIST_PAGES {
        let mut list = bucket.list().prefix(prefix).limit(1_000);
        if let Some(at) = cursor.take() {
            list = list.cursor(at);
        }
        let page = list.execute().await?;
        keys.extend(
            page.objects()
                .into_iter()
                .filter(|object| i64::try_from(object.uploaded().as_millis()).is_ok_and(|at| at < before_ms))
                .map(|object| object.key()),
        );
        cursor = page.cursor().filter(|_| page.truncated());
        if keys.len() >= limit || cursor.is_none() {
            break;
        }
    }
    keys.truncate(limit);
    Ok(keys)
}

/// A KV namespace: the three calls crm-edge makes (read a text, write a text that expires,
/// delete), made on the namespace's own methods.
pub struct Kv(JsValue);

impl Kv {
    /// The text stored under `key`, or None.
    pub async fn text(&self, key: &str) -> worker::Result<Option<String>> {
        Ok(self.call("get", &[key.into()]).await?.as_string())
    }

    /// Stores `value` under `key` for `ttl_seconds` (KV's least is 60).
    pub async fn put_expiring(&self, key: &str, value: &str, ttl_seconds: u64) -> worker::Result<()> {
        let options = Object::new();
        Reflect::set(
            &options,
            &JsValue::from_str("expirationTtl"),
            &JsValue::from_f64(ttl_seconds as f64),
        )?;
        self.call("put", &[key.into(), value.into(), options.into()])
            .await?;
        Ok(())
    }

    /// Removes `key` (nothing to remove is not an error).
    pub async fn delete(&self, key: &str) -> worker::Result<()> {
        self.call("delete", &[key.into()]).await?;
        Ok(())
    }

    async fn call(&self, method: &str, args: &[JsValue]) -> worker::Result<JsValue> {
        let function: Function = Reflect::get(&self.0, &JsValue::from_str(method))?.dyn_into()?;
        let promise: Promise = function
            .apply(&self.0, &args.iter().collect::<Array>())?
            .dyn_into()?;
        Ok(JsFuture::from(promise).await?)
    }
}

/// A queue, for sending.
pub struct Queue(worker::Queue);

// A body goes to the runtime as the JSON `serde_json` writes, parsed, exactly as the native twin
// records it: `serde_wasm_bindgen`, which `worker` would use, writes a map, or a struct with a
// flattened field, as a JavaScript `Map`, and a queue delivers a `Map` as `{}`. Only the
// serialising is generic; the sending is one future for every type.
impl Queue {
    pub fn send<T: serde::Serialize>(&self, body: T) -> impl Future<Output = worker::Result<()>> {
        self.send_json(json_text(&body).map(|text| vec![text]), None)
    }

    /// Sends `items` in one call, each delivered after `delay_seconds`.
    pub fn send_batch<T: serde::Serialize + Clone>(
        &self,
        items: &[T],
        delay_seconds: u32,
    ) -> impl Future<Output = worker::Result<()>> {
        self.send_json(items.iter().map(json_text).collect(), Some(delay_seconds))
    }

    async fn send_json(
        &self,
        texts: worker::Result<Vec<String>>,
        delay_seconds: Option<u32>,
    ) -> worker::Result<()> {
        let messages = texts?
            .iter()
            .map(|text| {
                let body = js_sys::JSON::parse(text)?;
                let builder = RawMessageBuilder::new(body);
                let builder = match delay_seconds {
                    Some(seconds) => builder.delay_seconds(seconds),
                    None => builder,
                };
                Ok(builder.build_with_content_type(QueueContentType::Json))
            })
            .collect::<worker::Result<Vec<_>>>()?;
        let batch = BatchMessageBuilder::new().messages(messages).build();
        self.0.send_raw_batch(batch).await
    }
}

fn json_text<T: serde::Serialize>(body: &T) -> worker::Result<String> {
    serde_json::to_string(body).map_err(|error| worker::Error::RustError(format!("a queue body: {error}")))
}

/// One message of a batch a consumer was handed.
pub struct QueueMessage(Message);

impl QueueMessage {
    /// The messages of a batch; none (logged) if the batch cannot be read.
    pub fn of_batch(batch: &MessageBatch) -> Vec<QueueMessage> {
        match batch.messages() {
            Ok(messages) => messages
                .iter()
                .map(|value| QueueMessage(value.unchecked_into()))
                .collect(),
            Err(error) => {
                crate::console_error!("a queue batch could not be read: {error:?}");
                Vec::new()
            }
        }
    }

    /// How many times this message has been delivered, this time included (1 on first delivery).
    pub fn attempts(&self) -> u32 {
        Reflect::get(&self.0, &JsValue::from_str("attempts"))
            .ok()
            .and_then(|value| value.as_f64())
            .filter(|count| count.is_finite() && *count >= 1.0)
            .map_or(1, |count| count.min(f64::from(u32::MAX)) as u32)
    }

    /// The body as JSON text.
    pub fn body_json(&self) -> Option<String> {
        let body = self.0.body().ok()?;
        js_sys::JSON::stringify(&body).ok()?.as_string()
    }

    pub fn ack(&self) -> Result<(), String> {
        self.0.ack().map_err(|error| format!("{error:?}"))
    }

    pub fn retry_in(&self, seconds: u32) -> Result<(), String> {
        let options = Object::new();
        let _ = Reflect::set(
            &options,
            &JsValue::from_str("delaySeconds"),
            &JsValue::from_f64(f64::from(seconds)),
        );
        self.0.retry(options.into()).map_err(|error| format!("{error:?}"))
    }
}

/// A value bound to a statement, as the runtime takes it.
pub type Bound = JsValue;

/// The runtime's value of a bound parameter.
pub fn bound(param: &Param) -> Bound {
    match param {
        Param::Text(text) => JsValue::from_str(text),
        Param::Number(number) => JsValue::from_f64(*number),
        Param::Null => JsValue::NULL,
    }
}

/// The runtime's value of a text parameter.
pub fn bound_text(text: &str) -> Bound {
    JsValue::from_str(text)
}

/// The statement `sql` on `database`, with `values` bound in order.
pub fn prepare(database: &D1Database, sql: &str, values: &[Bound]) -> worker::Result<D1PreparedStatement> {
    let statement = database.prepare(sql);
    if values.is_empty() {
        Ok(statement)
    } else {
        statement.bind(values)
    }
}

/// A request this worker makes, to send or to have the runtime parse: its method, headers and
/// body, and a redirect answered to it is returned, not followed (a caller that follows one checks
/// where it leads first). Built on the web's own `RequestInit`: `worker::Request::new_with_init`
/// also converts Cloudflare's `cf` options, which nothing here sets, and that conversion cost every
/// bundle that made a request 14 KB of code.
// Inlined, so that each caller keeps only the conversion of the body it passes: out of line, the
// gateway's text body carried the bytes' conversion too (Uint8Array's import and its call).
#[inline(always)]
pub fn outgoing(
    method: Method,
    url: &str,
    headers: Option<&Headers>,
    body: Option<Body<'_>>,
) -> worker::Result<Request> {
    let body = body.map(|body| match body {
        Body::Bytes(bytes) => JsValue::from(Uint8Array::from(bytes)),
        Body::Text(text) => JsValue::from_str(text),
    });
    request(method, url, headers, body.as_ref())
}

fn request(
    method: Method,
    url: &str,
    headers: Option<&Headers>,
    body: Option<&JsValue>,
) -> worker::Result<Request> {
    let init = web_sys::RequestInit::new();
    init.set_method(method.as_ref());
    init.set_redirect(web_sys::RequestRedirect::Manual);
    if let Some(headers) = headers {
        init.set_headers(headers.as_ref());
    }
    if let Some(body) = body {
        init.set_body(body);
    }
    Ok(web_sys::Request::new_with_str_and_init(url, &init)?.into())
}

/// A multipart or URL-encoded body already read within its limit, parsed by the runtime (whose
/// form parser takes a request: one is made at `url`). The bytes are copied to the runtime once,
/// and this copy is dropped before it parses.
pub async fn parse_form(url: &str, content_type: &str, body: Vec<u8>) -> worker::Result<FormData> {
    let headers = Headers::new();
    headers.set("content-type", content_type)?;
    let bytes = JsValue::from(Uint8Array::from(body.as_slice()));
    drop(body);
    request(Method::Post, url, Some(&headers), Some(&bytes))?
        .form_data()
        .await
}

/// What D1 said of a statement it refused (`UNIQUE constraint failed: …`), when the error is D1's.
pub fn d1_cause(error: &worker::Error) -> Option<String> {
    match error {
        worker::Error::D1(d1) => Some(d1.cause()),
        _ => None,
    }
}

/// The URL the request was made to, as the runtime serialised it.
pub fn request_url(req: &Request) -> String {
    req.inner().url()
}

/// The same request at `url`: its method, headers and body as they came (the web's
/// `new Request(url, request)`, which reads the request as the new one's init).
pub fn at_url(req: Request, url: &str) -> worker::Result<Request> {
    let init: &web_sys::RequestInit = req.inner().unchecked_ref();
    Ok(web_sys::Request::new_with_str_and_init(url, init)?.into())
}

/// The request's method as the client sent it, in capitals. `Request::method` reads any method
/// the `worker` crate does not know (`QUERY`, `FOO`) as GET; routing must not.
pub fn request_method(req: &Request) -> String {
    req.inner().method().to_ascii_uppercase()
}

/// The isolate: one per instance of the module, which keeps its memory while it lives.
pub fn isolate() -> u64 {
    0
}

pub fn now_ms() -> i64 {
    i64::try_from(worker::Date::now().as_millis()).unwrap_or(i64::MAX)
}

/// The day of the week (0 for Monday) and the minute of the day at `at_ms` in the IANA time zone
/// `zone`, as the runtime's `Intl.DateTimeFormat` reads it; None for a zone it does not know
/// (its constructor throws a RangeError, caught here).
pub fn local_time(zone: &str, at_ms: i64) -> Option<(u8, u16)> {
    let intl = Reflect::get(&js_sys::global(), &JsValue::from_str("Intl")).ok()?;
    let constructor: Function = Reflect::get(&intl, &JsValue::from_str("DateTimeFormat"))
        .ok()?
        .dyn_into()
        .ok()?;
    let options = Object::new();
    for (name, value) in [
        ("timeZone", zone),
        ("weekday", "short"),
        ("hour", "2-digit"),
        ("minute", "2-digit"),
        ("hourCycle", "h23"),
    ] {
        Reflect::set(&options, &JsValue::from_str(name), &JsValue::from_str(value)).ok()?;
    }
    let arguments = Array::of2(&JsValue::from_str("en-US"), &options);
    let format = Reflect::construct(&constructor, &arguments).ok()?;
    let to_parts: Function = Reflect::get(&format, &JsValue::from_str("formatToParts"))
        .ok()?
        .dyn_into()
        .ok()?;
    let date = js_sys::Date::new(&JsValue::from_f64(at_ms as f64));
    let parts: Array = to_parts.call1(&format, &date).ok()?.dyn_into().ok()?;
    let (mut day, mut hour, mut minute) = (None, None, None);
    for part in parts.iter() {
        let field = |name: &str| Reflect::get(&part, &JsValue::from_str(name)).ok()?.as_string();
        let value = field("value")?;
        match field("type")?.as_str() {
            "weekday" => {
                day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
                    .iter()
                    .position(|name| *name == value)
            }
            "hour" => hour = value.parse::<u16>().ok(),
            "minute" => minute = value.parse::<u16>().ok(),
            _ => {}
        }
    }
    Some((u8::try_from(day?).ok()?, (hour? % 24) * 60 + minute?))
}

/// `bytes` filled by `crypto.getRandomValues` (at most its quota at once).
pub fn fill_random(bytes: &mut [u8]) -> Result<(), String> {
    crypto()?
        .get_random_values_with_u8_array(bytes)
        .map(|_| ())
        .map_err(|error| format!("{error:?}"))
}

/// The runtime's `crypto` (WebCrypto).
fn crypto() -> Result<Crypto, String> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
        .map_err(|error| format!("{error:?}"))?;
    if crypto.is_undefined() {
        return Err("the runtime has no crypto".to_owned());
    }
    Ok(crypto.unchecked_into::<Crypto>())
}

const AES_GCM: &str = "AES-GCM";

/// AES-256-GCM on WebCrypto's `crypto.subtle` (RustCrypto's AES-GCM cost each bundle 4 to 5 KB
/// gzip more): `plaintext` sealed.
pub fn encrypt<'a>(
    key: &'a [u8; 32],
    nonce: &'a [u8; 12],
    associated: &'a [u8],
    plaintext: &'a [u8],
) -> impl Future<Output = Result<Vec<u8>, String>> + 'a {
    aes_gcm(Direction::Seal, key, nonce, associated, plaintext)
}

/// The plaintext of what [`encrypt`] sealed; WebCrypto rejects a value whose tag does not verify
/// (wrong key, wrong place, altered).
pub fn decrypt<'a>(
    key: &'a [u8; 32],
    nonce: &'a [u8; 12],
    associated: &'a [u8],
    sealed: &'a [u8],
) -> impl Future<Output = Result<Vec<u8>, String>> + 'a {
    aes_gcm(Direction::Open, key, nonce, associated, sealed)
}

enum Direction {
    Seal,
    Open,
}

/// One use of the key, imported for AES-GCM only and not extractable: `data` sealed or opened.
/// Both directions are this one future, so that sealing and opening do not each carry a copy.
async fn aes_gcm(
    direction: Direction,
    key: &[u8; 32],
    nonce: &[u8; 12],
    associated: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, String> {
    let failed = |error: JsValue| format!("{error:?}");
    let subtle = crypto()?.subtle();
    let algorithm = Object::new();
    Reflect::set(
        &algorithm,
        &JsValue::from_str("name"),
        &JsValue::from_str(AES_GCM),
    )
    .map_err(failed)?;
    let usages = Array::of2(&JsValue::from_str("encrypt"), &JsValue::from_str("decrypt"));
    let imported = subtle
        .import_key_with_object("raw", &Uint8Array::from(&key[..]), &algorithm, false, &usages)
        .map_err(failed)?;
    let key = JsFuture::from(imported)
        .await
        .map_err(failed)?
        .unchecked_into::<CryptoKey>();
    let params = AesGcmParams::new(AES_GCM, &Uint8Array::from(&nonce[..]));
    params.set_additional_data(&Uint8Array::from(associated));
    let data = Uint8Array::from(data);
    let promise = match direction {
        Direction::Seal => subtle.encrypt_with_object_and_buffer_source(&params, &key, &data),
        Direction::Open => subtle.decrypt_with_object_and_buffer_source(&params, &key, &data),
    }
    .map_err(failed)?;
    Ok(Uint8Array::new(&JsFuture::from(promise).await.map_err(failed)?).to_vec())
}
