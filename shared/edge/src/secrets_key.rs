//! The `SECRETS_KEY` Worker secret: the keyring that seals provider and webhook secrets before
//! they reach D1 (`domain::sealed` owns the format), and AES-256-GCM itself, run on the
//! runtime's WebCrypto (RustCrypto's AES-GCM cost each bundle 4 to 5 KB gzip more).

use crate::Env;
use crate::runtime;
use domain::error::ApiError;
use domain::sealed::{self, Key, Keyring, NONCE_LEN, OpenError, Opened, Place, Stored};
use worker::js_sys::{Array, Object, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{AesGcmParams, CryptoKey, SubtleCrypto};

/// The Worker secret holding the keyring (`k2:<64 hex>,k1:<64 hex>`), set on every function that
/// reads or writes a sealed column: provider, webhook, connector and link secrets, and the
/// responses kept for idempotency keys (`functions.toml`).
pub const SECRETS_KEY: &str = "SECRETS_KEY";
const ALGORITHM: &str = "AES-GCM";

/// The keyring of this deployment. A missing or malformed secret is our misconfiguration: the
/// request fails with a 500 whose log says which, and never shows the value.
pub fn keyring(env: &Env) -> Result<Keyring, ApiError> {
    let value = env.secret(SECRETS_KEY).map_err(|_| {
        ApiError::internal(
            "reading the secrets keyring",
            format!("the {SECRETS_KEY} secret is not configured"),
        )
    })?;
    Keyring::parse(&value.to_string()).map_err(|error| {
        ApiError::internal(
            "reading the secrets keyring",
            format!("the {SECRETS_KEY} secret cannot be used: {error}"),
        )
    })
}

/// `secret` sealed for `place` under the ring's first key, with a fresh random nonce.
pub async fn seal(keys: &Keyring, place: &Place<'_>, secret: &str) -> Result<String, ApiError> {
    let key = keys.sealing_key();
    let nonce: [u8; NONCE_LEN] = runtime::random()?;
    let failed = |error: JsValue| ApiError::internal("sealing a secret", format!("{place}: {error:?}"));
    let subtle = subtle().map_err(failed)?;
    let crypto_key = import(&subtle, &key).await.map_err(failed)?;
    let promise = subtle
        .encrypt_with_object_and_buffer_source(
            &params(&nonce, place),
            &crypto_key,
            &Uint8Array::from(secret.as_bytes()),
        )
        .map_err(failed)?;
    let ciphertext = bytes_of(JsFuture::from(promise).await.map_err(failed)?);
    Ok(sealed::sealed_value(key.id, &nonce, &ciphertext))
}

/// The secret stored at `place`: opened when sealed, as it is when it is clear text from before
/// sealing. One that does not open is a fault of ours (a key left out of the ring, a row altered
/// or copied by hand), not the client's.
pub async fn open(keys: &Keyring, place: &Place<'_>, stored: &str) -> Result<Opened, ApiError> {
    let refused =
        |error: OpenError| ApiError::internal("opening a stored secret", format!("{place}: {error}"));
    let (key, nonce, ciphertext, needs_resealing) = match keys.parse_stored(stored).map_err(refused)? {
        Stored::Clear(secret) => {
            return Ok(Opened {
                secret,
                needs_resealing: true,
            });
        }
        Stored::Sealed {
            key,
            nonce,
            ciphertext,
            needs_resealing,
        } => (key, nonce, ciphertext, needs_resealing),
    };
    let failed =
        |error: JsValue| ApiError::internal("opening a stored secret", format!("{place}: {error:?}"));
    let subtle = subtle().map_err(failed)?;
    let crypto_key = import(&subtle, &key).await.map_err(failed)?;
    let promise = subtle
        .decrypt_with_object_and_buffer_source(
            &params(&nonce, place),
            &crypto_key,
            &Uint8Array::from(&ciphertext[..]),
        )
        .map_err(failed)?;
    // WebCrypto rejects a value whose tag does not verify (wrong key, wrong place, altered).
    let plaintext = JsFuture::from(promise)
        .await
        .map_err(|_| refused(OpenError::Refused))?;
    Opened::from_plaintext(bytes_of(plaintext), needs_resealing).map_err(refused)
}

/// The runtime's `crypto.subtle`.
fn subtle() -> Result<SubtleCrypto, JsValue> {
    Ok(runtime::crypto()?.subtle())
}

/// The key, for AES-GCM only and not extractable.
async fn import(subtle: &SubtleCrypto, key: &Key<'_>) -> Result<CryptoKey, JsValue> {
    let algorithm = Object::new();
    Reflect::set(
        &algorithm,
        &JsValue::from_str("name"),
        &JsValue::from_str(ALGORITHM),
    )?;
    let usages = Array::of2(&JsValue::from_str("encrypt"), &JsValue::from_str("decrypt"));
    let promise = subtle.import_key_with_object(
        "raw",
        &Uint8Array::from(&key.bytes[..]),
        &algorithm,
        false,
        &usages,
    )?;
    Ok(JsFuture::from(promise).await?.unchecked_into::<CryptoKey>())
}

/// AES-GCM with `nonce`, bound to `place`, with the default 128-bit tag.
fn params(nonce: &[u8; NONCE_LEN], place: &Place<'_>) -> AesGcmParams {
    let params = AesGcmParams::new(ALGORITHM, &Uint8Array::from(&nonce[..]));
    params.set_additional_data(&Uint8Array::from(&place.associated_data()[..]));
    params
}

/// The bytes of the `ArrayBuffer` a cipher call resolved to.
fn bytes_of(buffer: JsValue) -> Vec<u8> {
    Uint8Array::new(&buffer).to_vec()
}
