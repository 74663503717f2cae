//! The clock and randomness of the Workers runtime, handed to pure code as values.

use domain::error::ApiError;
use domain::time::Timestamp;
use worker::js_sys::{self, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::web_sys::Crypto;

/// The most `crypto.getRandomValues` fills in one call (WebCrypto's quota).
const RANDOM_VALUES_QUOTA: usize = 65_536;

/// `SystemTime::now()` panics on wasm32-unknown-unknown; the JS clock is the runtime's clock.
pub fn now() -> Timestamp {
    Timestamp::from_millis(i64::try_from(worker::Date::now().as_millis()).unwrap_or(i64::MAX))
}

/// `count` random values of `N` bytes each, drawn from the runtime at once (one call across to it
/// for up to 64 KiB, where [`random`] in a loop would cross once per value).
pub fn randoms<const N: usize>(count: usize) -> Result<Vec<[u8; N]>, ApiError> {
    let mut bytes = vec![0u8; N * count];
    fill_random(&mut bytes)?;
    Ok(bytes
        .chunks_exact(N)
        .map(|chunk| {
            let mut value = [0u8; N];
            value.copy_from_slice(chunk);
            value
        })
        .collect())
}

pub fn random<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut bytes = [0u8; N];
    fill_random(&mut bytes)?;
    Ok(bytes)
}

/// `bytes` filled by the runtime's cryptographic random source.
fn fill_random(bytes: &mut [u8]) -> Result<(), ApiError> {
    let failed = |error: JsValue| ApiError::internal("randomness", format!("{error:?}"));
    let crypto = crypto().map_err(failed)?;
    for chunk in bytes.chunks_mut(RANDOM_VALUES_QUOTA) {
        crypto.get_random_values_with_u8_array(chunk).map_err(failed)?;
    }
    Ok(())
}

/// The runtime's `crypto` (WebCrypto): random values here, `crypto.subtle` for sealing.
pub(crate) fn crypto() -> Result<Crypto, JsValue> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))?;
    if crypto.is_undefined() {
        return Err(JsValue::from_str("the runtime has no crypto"));
    }
    Ok(crypto.unchecked_into::<Crypto>())
}
