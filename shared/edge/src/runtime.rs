//! The clock and randomness of the Workers runtime, handed to pure code as values.

use domain::error::ApiError;
use domain::time::Timestamp;

/// `SystemTime::now()` panics on wasm32-unknown-unknown; the JS clock is the runtime's clock.
pub fn now() -> Timestamp {
    Timestamp::from_millis(i64::try_from(worker::Date::now().as_millis()).unwrap_or(i64::MAX))
}

pub fn random<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|error| ApiError::internal("randomness", error))?;
    Ok(bytes)
}
