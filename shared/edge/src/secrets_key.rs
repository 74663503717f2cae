//! The `SECRETS_KEY` Worker secret: the keyring that seals provider and webhook secrets before
//! they reach D1 (`domain::sealed` owns the format), with the runtime's AES-256-GCM.

use crate::Env;
use crate::runtime;
use domain::error::ApiError;
use domain::sealed::{self, Keyring, NONCE_LEN, OpenError, Opened, Place, Stored};

/// The Worker secret holding the keyring (`k2:<64 hex>,k1:<64 hex>`), set on every function that
/// reads or writes a sealed column: provider, webhook, connector and link secrets, and the
/// responses kept for idempotency keys (`functions.toml`).
pub const SECRETS_KEY: &str = "SECRETS_KEY";

/// The keyring of this deployment. A missing or malformed secret is our misconfiguration: the
/// request fails with a 500 whose log says which, and never shows the value.
pub fn keyring(env: &Env) -> Result<Keyring, ApiError> {
    let value = env.secret(SECRETS_KEY).ok_or_else(|| {
        ApiError::internal(
            "reading the secrets keyring",
            format!("the {SECRETS_KEY} secret is not configured"),
        )
    })?;
    Keyring::parse(&value).map_err(|error| {
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
    let ciphertext = runtime::encrypt(key.bytes, &nonce, &place.associated_data(), secret.as_bytes())
        .await
        .map_err(|error| ApiError::internal("sealing a secret", format!("{place}: {error}")))?;
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
    // The cipher refuses a value whose tag does not verify (wrong key, wrong place, altered).
    let plaintext = runtime::decrypt(key.bytes, &nonce, &place.associated_data(), &ciphertext)
        .await
        .map_err(|_| refused(OpenError::Refused))?;
    Opened::from_plaintext(plaintext, needs_resealing).map_err(refused)
}
