//! The clock and randomness of the Workers runtime, handed to pure code as values.

use domain::error::ApiError;
use domain::time::Timestamp;

/// `SystemTime::now()` panics on wasm32-unknown-unknown; the JS clock is the runtime's clock.
pub fn now() -> Timestamp {
    Timestamp::from_millis(i64::try_from(worker::Date::now().as_millis()).unwrap_or(i64::MAX))
}

/// `count` random values of `N` bytes each, drawn from the runtime at once (one call across to it
/// for up to 64 KiB, where [`random`] in a loop would cross once per value).
pub fn randoms<const N: usize>(count: usize) -> Result<Vec<[u8; N]>, ApiError> {
    let mut bytes = vec![0u8; N * count];
    getrandom::getrandom(&mut bytes).map_err(|error| ApiError::internal("randomness", error))?;
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
    getrandom::getrandom(&mut bytes).map_err(|error| ApiError::internal("randomness", error))?;
    Ok(bytes)
}
