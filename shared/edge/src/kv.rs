//! The three KV calls crm-edge makes (read a text, write a text that expires, delete), made on the
//! namespace's own methods. worker's `KvStore` builds each call's options through serde (a
//! struct serializer and a JSON-value serializer for metadata we never send), code that every
//! keyed function carried for one optional number.

use worker::js_sys::{Array, Function, Object, Promise, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;

/// A KV namespace binding, taken for one operation ([`crate::Env::kv`]).
pub struct Kv(JsValue);

impl Kv {
    /// The binding `name` of `env`; an error when there is none.
    pub(crate) fn bound(env: &worker::Env, name: &str) -> worker::Result<Self> {
        let binding = Reflect::get(env, &JsValue::from_str(name))?;
        if binding.is_object() {
            Ok(Self(binding))
        } else {
            Err(worker::Error::JsError(format!(
                "no KV namespace is bound as {name}"
            )))
        }
    }

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
