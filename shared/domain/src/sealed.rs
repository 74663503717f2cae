//! Secrets at rest: provider and webhook secrets are sealed with AES-256-GCM before they are
//! written to D1, so that a D1 export, a backup or a leaked query result shows no secret.
//!
//! A sealed value reads `v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`. The key id names the
//! key of the [`Keyring`] that sealed it, so keys can rotate: the ring's first key seals, every key
//! in it opens. The 96-bit nonce is random, drawn by the caller (this crate has no randomness).
//!
//! Each value is bound to its place, the table, column and row id it is stored at, as AES-GCM
//! associated data: a sealed value copied into another row, or into another column of its row
//! (the current webhook secret into the previous one's place, say), does not open.
//!
//! Values written before sealing existed are clear text (a webhook secret `whsec_…`, a JSON object
//! of provider secrets): neither can start with `v1:`, so they cannot be mistaken for sealed
//! ones. They are read as they are, and [`Opened::needs_resealing`] tells the caller to write them
//! back sealed: the `edge` table modules do that on the read that finds them (a compare-and-set,
//! so a concurrent write wins) and every write seals anyway. The same happens to a value sealed
//! under a key that is no longer the ring's first, which is how a rotation reaches every row that
//! is read; a row nobody reads keeps its old key until it is written (README, "Secrets at rest").

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt;

/// What every sealed value starts with; the version names the cipher and the layout.
pub const SEALED_PREFIX: &str = "v1:";
/// AES-GCM's 96-bit nonce, drawn at random for every value sealed.
pub const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
const MAX_KEY_ID_LEN: usize = 32;

/// Where a sealed value is stored: the associated data it is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    pub table: &'static str,
    pub column: &'static str,
    pub row_id: &'a str,
}

impl Place<'_> {
    /// NUL-separated: none of the three can contain a NUL, so two places never share their bytes.
    fn associated_data(&self) -> Vec<u8> {
        [self.table, self.column, self.row_id].join("\0").into_bytes()
    }
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{} of {}", self.table, self.column, self.row_id)
    }
}

/// The keys that seal and open secrets, parsed from the `SECRETS_KEY` Worker secret:
/// `k2:<64 hex>,k1:<64 hex>`, the first key sealing and every key opening. Its `Debug` shows
/// only the key ids.
pub struct Keyring {
    keys: Vec<(String, Aes256Gcm)>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.keys.iter().map(|(id, _)| id).collect::<Vec<_>>())
            .finish()
    }
}

/// Why a keyring value cannot be used. The messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyringError {
    Empty,
    /// An entry is not `<key id>:<64 hex digits>`; its position, from 1.
    MalformedEntry(usize),
    /// A key id is not 1 to 32 letters, digits, `-` or `_`.
    BadKeyId(usize),
    DuplicateKeyId(String),
}

impl fmt::Display for KeyringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "it holds no key"),
            Self::MalformedEntry(at) => write!(f, "key {at} is not <key id>:<64 hex digits>"),
            Self::BadKeyId(at) => write!(
                f,
                "key {at} has an id that is not 1 to 32 letters, digits, - or _"
            ),
            Self::DuplicateKeyId(id) => write!(f, "key id {id} appears twice"),
        }
    }
}

/// Why a stored value does not open. None of these carries the value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Sealed under a key id the ring does not hold (a key removed too early, or the wrong ring).
    UnknownKey(String),
    /// It starts like a sealed value but is not one (truncated, bad base64, too short).
    Malformed,
    /// The key or the place is wrong, or a byte was changed: AES-GCM refuses it.
    Refused,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKey(id) => {
                write!(f, "it was sealed under key {id}, which the keyring does not hold")
            }
            Self::Malformed => write!(f, "it is not a well-formed sealed value"),
            Self::Refused => write!(f, "it does not open: wrong key, wrong row or altered"),
        }
    }
}

/// A stored value opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub secret: String,
    /// True for clear text from before sealing and for a value sealed under a key other than the
    /// ring's first: the caller should write it back sealed.
    pub needs_resealing: bool,
}

fn valid_key_id(id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

impl Keyring {
    pub fn parse(text: &str) -> Result<Self, KeyringError> {
        let mut keys: Vec<(String, Aes256Gcm)> = Vec::new();
        for (index, entry) in text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let position = index + 1;
            let (id, hex_key) = entry
                .rsplit_once(':')
                .ok_or(KeyringError::MalformedEntry(position))?;
            if !valid_key_id(id) {
                return Err(KeyringError::BadKeyId(position));
            }
            let bytes = hex::decode(hex_key).map_err(|_| KeyringError::MalformedEntry(position))?;
            if bytes.len() != KEY_LEN {
                return Err(KeyringError::MalformedEntry(position));
            }
            let cipher =
                Aes256Gcm::new_from_slice(&bytes).map_err(|_| KeyringError::MalformedEntry(position))?;
            if keys.iter().any(|(known, _)| known == id) {
                return Err(KeyringError::DuplicateKeyId(id.to_owned()));
            }
            keys.push((id.to_owned(), cipher));
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        Ok(Self { keys })
    }

    /// The id of the key that seals: the ring's first.
    pub fn sealing_key_id(&self) -> &str {
        self.keys.first().map_or("", |(id, _)| id.as_str())
    }

    /// `secret` sealed for `place` under the ring's first key, with `nonce` (random, never reused
    /// with the same key).
    pub fn seal(&self, place: &Place<'_>, secret: &str, nonce: [u8; NONCE_LEN]) -> String {
        let Some((id, cipher)) = self.keys.first() else {
            // parse() refuses an empty ring, so there is always a first key.
            return String::new();
        };
        let mut buffer = secret.as_bytes().to_vec();
        let Ok(tag) = cipher.encrypt_in_place_detached(
            Nonce::from_slice(&nonce),
            &place.associated_data(),
            &mut buffer,
        ) else {
            // Only a message over 64 GiB fails to encrypt.
            return String::new();
        };
        let mut sealed = Vec::with_capacity(NONCE_LEN + buffer.len() + TAG_LEN);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&buffer);
        sealed.extend_from_slice(&tag);
        format!("{SEALED_PREFIX}{id}:{}", URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The secret `stored` at `place` holds: opened when sealed, as it is when it is clear text
    /// from before sealing (see the module's doc).
    pub fn open(&self, place: &Place<'_>, stored: &str) -> Result<Opened, OpenError> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(Opened {
                secret: stored.to_owned(),
                needs_resealing: true,
            });
        };
        let (id, encoded) = rest.split_once(':').ok_or(OpenError::Malformed)?;
        let position = self
            .keys
            .iter()
            .position(|(known, _)| known == id)
            .ok_or_else(|| OpenError::UnknownKey(id.to_owned()))?;
        let cipher = &self.keys[position].1;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| OpenError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut buffer = ciphertext.to_vec();
        cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                &place.associated_data(),
                &mut buffer,
                Tag::from_slice(tag),
            )
            .map_err(|_| OpenError::Refused)?;
        let secret = String::from_utf8(buffer).map_err(|_| OpenError::Malformed)?;
        Ok(Opened {
            secret,
            needs_resealing: position != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "k2:1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";
    const NONCE: [u8; NONCE_LEN] = [7; NONCE_LEN];

    fn place(row_id: &str) -> Place<'_> {
        Place {
            table: "webhook_endpoints",
            column: "secret",
            row_id,
        }
    }

    fn ring(text: &str) -> Keyring {
        match Keyring::parse(text) {
            Ok(ring) => ring,
            Err(error) => panic!("{text}: {error}"),
        }
    }

    #[test]
    fn a_sealed_secret_opens_to_itself_and_shows_nothing_of_it() {
        let keys = ring(K1);
        let sealed = keys.seal(&place("ep_1"), "whsec_abcdef", NONCE);
        assert!(sealed.starts_with("v1:k1:"), "{sealed}");
        assert!(!sealed.contains("whsec"), "{sealed}");
        assert_eq!(
            keys.open(&place("ep_1"), &sealed),
            Ok(Opened {
                secret: "whsec_abcdef".to_owned(),
                needs_resealing: false
            })
        );
    }

    #[test]
    fn an_empty_secret_seals_and_opens_too() {
        let keys = ring(K1);
        let sealed = keys.seal(&place("ep_1"), "", NONCE);
        assert_eq!(
            keys.open(&place("ep_1"), &sealed).map(|o| o.secret),
            Ok(String::new())
        );
    }

    #[test]
    fn two_seals_of_one_secret_differ_with_their_nonces() {
        let keys = ring(K1);
        let one = keys.seal(&place("ep_1"), "whsec_abcdef", [1; NONCE_LEN]);
        let two = keys.seal(&place("ep_1"), "whsec_abcdef", [2; NONCE_LEN]);
        assert_ne!(one, two);
    }

    #[test]
    fn a_value_sealed_for_another_row_or_column_does_not_open() {
        let keys = ring(K1);
        let sealed = keys.seal(&place("ep_1"), "whsec_abcdef", NONCE);
        assert_eq!(keys.open(&place("ep_2"), &sealed), Err(OpenError::Refused));
        let previous = Place {
            column: "previous_secret",
            ..place("ep_1")
        };
        assert_eq!(keys.open(&previous, &sealed), Err(OpenError::Refused));
        let other_table = Place {
            table: "channel_accounts",
            ..place("ep_1")
        };
        assert_eq!(keys.open(&other_table, &sealed), Err(OpenError::Refused));
    }

    #[test]
    fn a_changed_byte_anywhere_is_refused() {
        let keys = ring(K1);
        let sealed = keys.seal(&place("ep_1"), "whsec_abcdef", NONCE);
        let encoded_from = "v1:k1:".len();
        for at in encoded_from..sealed.len() {
            let mut bytes = sealed.clone().into_bytes();
            // Swap between two base64url letters so the value stays decodable where it can.
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap_or_default();
            let opened = keys.open(&place("ep_1"), &tampered);
            assert!(
                matches!(opened, Err(OpenError::Refused | OpenError::Malformed)),
                "a change at byte {at} opened: {opened:?}"
            );
        }
    }

    #[test]
    fn a_value_under_a_key_id_the_ring_lacks_names_that_key() {
        let sealed = ring(K2).seal(&place("ep_1"), "whsec_abcdef", NONCE);
        assert_eq!(
            ring(K1).open(&place("ep_1"), &sealed),
            Err(OpenError::UnknownKey("k2".to_owned()))
        );
    }

    #[test]
    fn a_different_key_under_the_same_id_is_refused() {
        let sealed = ring(K1).seal(&place("ep_1"), "whsec_abcdef", NONCE);
        let impostor = format!("k1:{}", &K2[3..]);
        assert_eq!(
            ring(&impostor).open(&place("ep_1"), &sealed),
            Err(OpenError::Refused)
        );
    }

    #[test]
    fn after_a_rotation_the_new_key_seals_and_the_old_one_still_opens() {
        let before = ring(K1);
        let old = before.seal(&place("ep_1"), "whsec_old", NONCE);

        let after = ring(&format!("{K2},{K1}"));
        assert_eq!(after.sealing_key_id(), "k2");
        let opened = after.open(&place("ep_1"), &old);
        assert_eq!(
            opened,
            Ok(Opened {
                secret: "whsec_old".to_owned(),
                needs_resealing: true
            }),
            "a value under the old key opens and asks to be resealed"
        );
        let resealed = after.seal(&place("ep_1"), "whsec_old", [9; NONCE_LEN]);
        assert!(resealed.starts_with("v1:k2:"), "{resealed}");
        assert_eq!(
            after.open(&place("ep_1"), &resealed).map(|o| o.needs_resealing),
            Ok(false)
        );
        // Once every row is resealed the old key can leave the ring.
        assert!(ring(K2).open(&place("ep_1"), &resealed).is_ok());
    }

    #[test]
    fn clear_text_from_before_sealing_is_read_as_is_and_asks_to_be_resealed() {
        let keys = ring(K1);
        for legacy in ["whsec_abcdef", r#"{"app_secret":"s"}"#, ""] {
            assert_eq!(
                keys.open(&place("ep_1"), legacy),
                Ok(Opened {
                    secret: legacy.to_owned(),
                    needs_resealing: true
                }),
                "{legacy:?}"
            );
        }
    }

    #[test]
    fn malformed_sealed_values_are_refused_not_read_as_clear_text() {
        let keys = ring(K1);
        for (stored, why) in [
            ("v1:", "no key id"),
            ("v1:k1", "no payload"),
            ("v1:k1:", "empty payload"),
            ("v1:k1:AAAA", "shorter than nonce and tag"),
            ("v1:k1:!!!!", "not base64url"),
        ] {
            assert!(keys.open(&place("ep_1"), stored).is_err(), "{why}: {stored}");
        }
    }

    #[test]
    fn keyrings_that_cannot_be_used_are_refused_with_a_reason() {
        let short = "k1:0011";
        let long = format!("k1:{}00", &K1[3..]);
        let not_hex = format!("k1:{}", "zz".repeat(32));
        let bad_id = format!("k:1:{}", &K1[3..]);
        let long_id = format!("{}:{}", "k".repeat(33), &K1[3..]);
        for (text, expected, why) in [
            ("", KeyringError::Empty, "empty"),
            (" , ", KeyringError::Empty, "only separators"),
            ("k1", KeyringError::MalformedEntry(1), "no key"),
            (short, KeyringError::MalformedEntry(1), "key too short"),
            (&long, KeyringError::MalformedEntry(1), "key too long"),
            (&not_hex, KeyringError::MalformedEntry(1), "key not hex"),
            (&bad_id, KeyringError::BadKeyId(1), "colon in the id"),
            (&long_id, KeyringError::BadKeyId(1), "id too long"),
            (
                &format!("{K1},{K1}"),
                KeyringError::DuplicateKeyId("k1".into()),
                "duplicate",
            ),
            (
                &format!("{K2},k1:00"),
                KeyringError::MalformedEntry(2),
                "second key bad",
            ),
        ] {
            assert_eq!(Keyring::parse(text).map(|_| ()), Err(expected), "{why}");
        }
    }

    #[test]
    fn keyrings_allow_spaces_around_entries_and_never_print_keys() {
        let keys = ring(&format!(" {K2} , {K1} "));
        assert_eq!(keys.sealing_key_id(), "k2");
        let shown = format!("{keys:?}");
        assert!(shown.contains("k2") && !shown.contains(&K2[3..]), "{shown}");
    }

    #[test]
    fn sealing_matches_the_nist_gcm_vector_layout() {
        // The cipher itself: AES-256-GCM with a zero key, zero nonce, empty message and no
        // associated data gives the tag 530f8afbc74536b9a963b4f1c4cb738b (McGrew & Viega, case 13).
        let cipher = match Aes256Gcm::new_from_slice(&[0; KEY_LEN]) {
            Ok(cipher) => cipher,
            Err(error) => panic!("{error}"),
        };
        let mut empty: Vec<u8> = Vec::new();
        let tag = cipher.encrypt_in_place_detached(Nonce::from_slice(&[0; NONCE_LEN]), b"", &mut empty);
        assert_eq!(
            tag.map(hex::encode),
            Ok("530f8afbc74536b9a963b4f1c4cb738b".to_owned())
        );
    }
}
