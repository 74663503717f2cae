//! The `SECRETS_KEY` Worker secret: the keyring that seals provider and webhook secrets before
//! they reach D1 (`domain::sealed` owns the format), with the runtime's AES-256-GCM.

use crate::runtime;
use domain::error::ApiError;
use domain::sealed::{self, Keyring, NONCE_LEN, OpenError, Opened, Place, Stored};

/// The Worker secret holding the keyring (`k2:<64 hex>,k1:<64 hex>`), set on every function that
/// reads or writes a sealed column: provider, webhook, connector and link secrets, and the
/// responses kept for idempotency keys (`functions.toml`).
pub const SECRETS_KEY: &str = "SECRETS_KEY";

/// The keyring of this deployment, from the `SECRETS_KEY` secret's value (`Env::keyring` opens it
/// once an invocation). A missing or malformed secret is our misconfiguration: the request fails
/// with a 500 whose log says which, and never shows the value.
pub(crate) fn open_ring(secret: Option<String>) -> Result<Keyring, ApiError> {
    let value = secret.ok_or_else(|| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const OLD: &str = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const NEW: &str = "k2:1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

    fn place(row_id: &str) -> Place<'_> {
        Place {
            table: "webhook_endpoints",
            column: "secret",
            row_id,
        }
    }

    fn ring(text: &str) -> Keyring {
        Keyring::parse(text).unwrap_or_else(|error| panic!("{error}"))
    }

    async fn sealed(keys: &Keyring, place: &Place<'_>, secret: &str) -> String {
        seal(keys, place, secret)
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
    }

    #[test]
    fn a_sealed_secret_opens_where_it_was_sealed_and_shows_nothing_of_itself() {
        let fixture = Fixture::new();
        fixture.run(async {
            let keys = fixture.env.keyring().unwrap_or_else(|error| panic!("{error:?}"));
            let stored = sealed(&keys, &place("ep_1"), "whsec_the-secret").await;
            assert!(stored.starts_with("v1:k1:"), "{stored}");
            assert!(!stored.contains("the-secret"), "{stored}");
            let opened = open(&keys, &place("ep_1"), &stored)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(opened.secret, "whsec_the-secret");
            assert!(!opened.needs_resealing, "sealed under the ring's first key");
            let again = sealed(&keys, &place("ep_1"), "whsec_the-secret").await;
            assert_ne!(again, stored, "every seal draws a new nonce");
        });
    }

    #[test]
    fn a_sealed_value_is_aes_256_gcm_bound_to_its_table_column_and_row() {
        let fixture = Fixture::new();
        fixture.run(async {
            let keys = ring(OLD);
            let stored = sealed(&keys, &place("ep_1"), "whsec_the-secret").await;
            let encoded = stored.strip_prefix("v1:k1:").unwrap_or_default();
            let bytes = URL_SAFE_NO_PAD
                .decode(encoded)
                .unwrap_or_else(|error| panic!("{error}"));
            let (nonce, ciphertext) = bytes.split_at(12);
            let key: [u8; 32] = std::array::from_fn(|at| at as u8);
            let cipher = Aes256Gcm::new_from_slice(&key).unwrap_or_else(|error| panic!("{error}"));
            let plaintext = cipher
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: b"webhook_endpoints\0secret\0ep_1",
                    },
                )
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(plaintext, b"whsec_the-secret");
        });
    }

    #[test]
    fn a_value_moved_to_another_place_or_altered_or_under_another_ring_does_not_open() {
        let fixture = Fixture::new();
        fixture.run(async {
            let keys = ring(OLD);
            let stored = sealed(&keys, &place("ep_1"), "whsec_the-secret").await;
            let mut altered = stored.clone().into_bytes();
            let last = altered.len() - 1;
            altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap_or_default();
            let other_column = Place {
                column: "previous_secret",
                ..place("ep_1")
            };
            let same_id_other_key = ring(&format!("k1:{}", "ff".repeat(32)));
            let cases: [(&str, &Keyring, Place<'_>, &str); 5] = [
                ("another row", &keys, place("ep_2"), &stored),
                ("another column of its row", &keys, other_column, &stored),
                ("a changed byte", &keys, place("ep_1"), &altered),
                (
                    "a ring whose k1 is another key",
                    &same_id_other_key,
                    place("ep_1"),
                    &stored,
                ),
                ("a ring without its key", &ring(NEW), place("ep_1"), &stored),
            ];
            for (description, keys, place, value) in cases {
                let error = open(keys, &place, value)
                    .await
                    .err()
                    .unwrap_or_else(|| panic!("{description}: it opened"));
                assert_eq!(error.status(), 500, "{description}: our fault, not the client's");
                assert_eq!(error.body.message, "internal error", "{description}");
                let detail = error.detail().unwrap_or_default();
                assert!(!detail.contains("the-secret"), "{description}: {detail}");
            }
        });
    }

    #[test]
    fn a_value_sealed_under_an_older_key_of_the_ring_opens_and_asks_to_be_sealed_again() {
        let fixture = Fixture::new();
        fixture.run(async {
            let before = sealed(&ring(OLD), &place("ep_1"), "whsec_old").await;
            let rotated = ring(&format!("{NEW},{OLD}"));
            let opened = open(&rotated, &place("ep_1"), &before)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(
                (opened.secret.as_str(), opened.needs_resealing),
                ("whsec_old", true)
            );
            let after = sealed(&rotated, &place("ep_1"), "whsec_old").await;
            assert!(after.starts_with("v1:k2:"), "the first key seals: {after}");
            let reopened = open(&rotated, &place("ep_1"), &after)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert!(!reopened.needs_resealing);
        });
    }

    #[test]
    fn clear_text_from_before_sealing_is_read_as_it_is_and_asks_to_be_sealed() {
        let fixture = Fixture::new();
        fixture.run(async {
            let opened = open(&ring(OLD), &place("ep_1"), "whsec_from_2025")
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(
                (opened.secret.as_str(), opened.needs_resealing),
                ("whsec_from_2025", true)
            );
        });
    }

    #[test]
    fn a_missing_or_malformed_keyring_is_a_500_that_never_shows_the_value() {
        let cases = [
            (None, "is not configured"),
            (Some("k1:not-hex-at-all"), "cannot be used"),
            (Some(""), "cannot be used"),
        ];
        for (value, says) in cases {
            let stack = crate::runtime::native::Stack::new();
            if let Some(value) = value {
                stack.set_secret(SECRETS_KEY, value);
            } else {
                stack.remove_secret(SECRETS_KEY);
            }
            let env = crate::Env::new(stack, "test");
            let error = env.keyring().err().unwrap_or_else(|| panic!("{value:?}: a ring"));
            assert_eq!(error.status(), 500, "{value:?}");
            let detail = error.detail().unwrap_or_default();
            assert!(detail.contains(says), "{value:?}: {detail}");
            assert!(!detail.contains("not-hex-at-all"), "{value:?}: {detail}");
        }
    }
}
