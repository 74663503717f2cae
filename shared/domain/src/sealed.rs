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
//! ones. They are read as they are and flagged as needing resealing: the `edge` table modules
//! write them back sealed on the read that finds them (a compare-and-set, so a concurrent write
//! wins), and every write seals anyway. The same happens to a value sealed under a key that is no
//! longer the ring's first, which is how a rotation reaches every row that is read; a row nobody
//! reads keeps its old key until it is written (docs/security.md, "Secrets at rest").
//!
//! This module owns everything but the cipher: the format, the keyring, what a value is bound to
//! and what clear text means. AES-GCM itself runs in `edge` (`secrets_key`) on the runtime's
//! WebCrypto: RustCrypto's `aes-gcm` in the bundles cost 4 to 5 KB gzip more per function
//! (BENCHMARKS.md, "Bundle size"). The tests here seal and open with that crate (a
//! dev-dependency only): the same algorithm and the same ciphertext ‖ tag layout WebCrypto
//! writes, so the format, the binding and the rotation rules are checked against a real cipher.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt;

/// What every sealed value starts with; the version names the cipher and the layout.
pub const SEALED_PREFIX: &str = "v1:";
/// AES-GCM's 96-bit nonce, drawn at random for every value sealed.
pub const NONCE_LEN: usize = 12;
/// AES-GCM's 128-bit tag, written after the ciphertext.
pub const TAG_LEN: usize = 16;
/// AES-256: 32 bytes of key.
pub const KEY_LEN: usize = 32;
const MAX_KEY_ID_LEN: usize = 32;

/// Where a sealed value is stored: the associated data it is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    pub table: &'static str,
    pub column: &'static str,
    pub row_id: &'a str,
}

impl Place<'_> {
    /// The associated data a value at this place is sealed with. NUL-separated: none of the three
    /// can contain a NUL, so two places never share their bytes.
    pub fn associated_data(&self) -> Vec<u8> {
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
    keys: Vec<(String, [u8; KEY_LEN])>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.keys.iter().map(|(id, _)| id).collect::<Vec<_>>())
            .finish()
    }
}

/// One key of the ring, for the cipher. Its `Debug` shows only the id.
#[derive(Clone, Copy)]
pub struct Key<'a> {
    pub id: &'a str,
    pub bytes: &'a [u8; KEY_LEN],
}

impl fmt::Debug for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
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
    /// It starts like a sealed value but is not one (truncated, bad base64, too short, not UTF-8).
    Malformed,
    /// The key or the place is wrong, or a byte was changed: AES-GCM refuses it (the cipher, in
    /// `edge`, finds this).
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

/// What a stored value holds: clear text from before sealing, or what AES-GCM needs to open it.
#[derive(Debug)]
pub enum Stored<'a> {
    /// Clear text from before sealing, as it is: it needs resealing.
    Clear(String),
    Sealed {
        key: Key<'a>,
        nonce: [u8; NONCE_LEN],
        /// The ciphertext followed by its tag, as AES-GCM (and WebCrypto) write and read it.
        ciphertext: Vec<u8>,
        /// Sealed under a key other than the ring's first: it needs resealing.
        needs_resealing: bool,
    },
}

/// A stored value opened. Its `Debug` shows the secret: never log it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub secret: String,
    /// True for clear text from before sealing and for a value sealed under a key other than the
    /// ring's first: the caller should write it back sealed.
    pub needs_resealing: bool,
}

impl Opened {
    /// The plaintext AES-GCM gave back for a sealed value.
    pub fn from_plaintext(plaintext: Vec<u8>, needs_resealing: bool) -> Result<Self, OpenError> {
        let secret = String::from_utf8(plaintext).map_err(|_| OpenError::Malformed)?;
        Ok(Self {
            secret,
            needs_resealing,
        })
    }
}

fn valid_key_id(id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

impl Keyring {
    pub fn parse(text: &str) -> Result<Self, KeyringError> {
        let mut keys: Vec<(String, [u8; KEY_LEN])> = Vec::new();
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
            let mut bytes = [0u8; KEY_LEN];
            hex::decode_to_slice(hex_key, &mut bytes).map_err(|_| KeyringError::MalformedEntry(position))?;
            if keys.iter().any(|(known, _)| known == id) {
                return Err(KeyringError::DuplicateKeyId(id.to_owned()));
            }
            keys.push((id.to_owned(), bytes));
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        Ok(Self { keys })
    }

    /// The key that seals: the ring's first.
    pub fn sealing_key(&self) -> Key<'_> {
        const NONE: &[u8; KEY_LEN] = &[0; KEY_LEN];
        // parse() refuses an empty ring, so there is always a first key.
        self.keys
            .first()
            .map_or(Key { id: "", bytes: NONE }, |(id, bytes)| Key { id, bytes })
    }

    /// The ring's key `id`, if it holds one.
    pub fn key(&self, id: &str) -> Option<Key<'_>> {
        self.keys
            .iter()
            .find(|(known, _)| known == id)
            .map(|(id, bytes)| Key { id, bytes })
    }

    /// What `stored` holds (see [`Stored`]). Err when it starts like a sealed value but cannot be
    /// one, or names a key the ring lacks.
    pub fn parse_stored(&self, stored: &str) -> Result<Stored<'_>, OpenError> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(Stored::Clear(stored.to_owned()));
        };
        let (id, encoded) = rest.split_once(':').ok_or(OpenError::Malformed)?;
        let position = self
            .keys
            .iter()
            .position(|(known, _)| known == id)
            .ok_or_else(|| OpenError::UnknownKey(id.to_owned()))?;
        let (id, bytes) = &self.keys[position];
        let sealed = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| OpenError::Malformed)?;
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let mut nonce_bytes = [0u8; NONCE_LEN];
        nonce_bytes.copy_from_slice(nonce);
        Ok(Stored::Sealed {
            key: Key { id, bytes },
            nonce: nonce_bytes,
            ciphertext: ciphertext.to_vec(),
            needs_resealing: position != 0,
        })
    }
}

/// The stored form of `ciphertext` (followed by its tag) sealed under `key_id` with `nonce`.
pub fn sealed_value(key_id: &str, nonce: &[u8; NONCE_LEN], ciphertext: &[u8]) -> String {
    let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    sealed.extend_from_slice(nonce);
    sealed.extend_from_slice(ciphertext);
    format!("{SEALED_PREFIX}{key_id}:{}", URL_SAFE_NO_PAD.encode(sealed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};

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

    fn cipher(key: &Key<'_>) -> Aes256Gcm {
        match Aes256Gcm::new_from_slice(key.bytes) {
            Ok(cipher) => cipher,
            Err(error) => panic!("{error}"),
        }
    }

    /// Sealing and opening as `edge::platform::secrets_key` composes them, with RustCrypto in WebCrypto's
    /// place.
    trait Sealing {
        fn seal(&self, place: &Place<'_>, secret: &str, nonce: [u8; NONCE_LEN]) -> String;
        fn open(&self, place: &Place<'_>, stored: &str) -> Result<Opened, OpenError>;
    }

    impl Sealing for Keyring {
        fn seal(&self, place: &Place<'_>, secret: &str, nonce: [u8; NONCE_LEN]) -> String {
            let key = self.sealing_key();
            let aad = place.associated_data();
            let payload = Payload {
                msg: secret.as_bytes(),
                aad: &aad,
            };
            match cipher(&key).encrypt(Nonce::from_slice(&nonce), payload) {
                Ok(ciphertext) => sealed_value(key.id, &nonce, &ciphertext),
                Err(error) => panic!("{error}"),
            }
        }

        fn open(&self, place: &Place<'_>, stored: &str) -> Result<Opened, OpenError> {
            match self.parse_stored(stored)? {
                Stored::Clear(secret) => Ok(Opened {
                    secret,
                    needs_resealing: true,
                }),
                Stored::Sealed {
                    key,
                    nonce,
                    ciphertext,
                    needs_resealing,
                } => {
                    let aad = place.associated_data();
                    let payload = Payload {
                        msg: &ciphertext,
                        aad: &aad,
                    };
                    let plaintext = cipher(&key)
                        .decrypt(Nonce::from_slice(&nonce), payload)
                        .map_err(|_| OpenError::Refused)?;
                    Opened::from_plaintext(plaintext, needs_resealing)
                }
            }
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
        assert_eq!(after.sealing_key().id, "k2");
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
        assert_eq!(keys.sealing_key().id, "k2");
        let shown = format!("{keys:?}");
        assert!(shown.contains("k2") && !shown.contains(&K2[3..]), "{shown}");
    }

    #[test]
    fn the_layout_is_nonce_then_ciphertext_then_tag_as_the_gcm_test_vectors_give_them() {
        // AES-256-GCM, zero key, zero nonce, one zero block, no associated data (McGrew & Viega,
        // test case 14): ciphertext cea7403d4d606b6e074ec5d3baf39d18, tag d0d1c8a799996bf0265b98b5d48ab919.
        let ring = ring(&format!("z:{}", "00".repeat(KEY_LEN)));
        let key = ring.sealing_key();
        let ciphertext = cipher(&key)
            .encrypt(Nonce::from_slice(&[0; NONCE_LEN]), &[0u8; 16][..])
            .unwrap_or_default();
        let stored = sealed_value(key.id, &[0; NONCE_LEN], &ciphertext);
        let encoded = stored.strip_prefix("v1:z:").unwrap_or_default();
        assert_eq!(
            hex::encode(URL_SAFE_NO_PAD.decode(encoded).unwrap_or_default()),
            format!(
                "{}{}{}",
                "00".repeat(NONCE_LEN),
                "cea7403d4d606b6e074ec5d3baf39d18",
                "d0d1c8a799996bf0265b98b5d48ab919"
            )
        );
    }
}
