//! API keys: how they look, how they are stored (only a hash), how they are shown (a prefix).

use crate::crypto::sha256_hex;

const SCHEME: &str = "cek_";
const SECRET_BYTES: usize = 24;
/// Characters of the key shown in listings: the scheme and 8 hex digits, enough to tell keys apart.
const DISPLAY_PREFIX_LEN: usize = SCHEME.len() + 8;

/// A freshly issued key. The plaintext exists only in the response that creates it.
pub struct IssuedApiKey {
    pub plaintext: String,
    pub prefix: String,
    pub hash: ApiKeyHash,
}

/// SHA-256 of the whole key, hex encoded. Keys carry 192 random bits, so a fast hash is
/// enough: there is nothing to brute-force that a slow hash would protect.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyHash(String);

impl ApiKeyHash {
    pub fn of(plaintext: &str) -> Self {
        Self(sha256_hex(plaintext.as_bytes()))
    }

    /// A hash read back from storage, where only hashes made by `of` are written.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn issue(random: [u8; SECRET_BYTES]) -> IssuedApiKey {
    let plaintext = format!("{SCHEME}{}", hex::encode(random));
    IssuedApiKey {
        prefix: plaintext[..DISPLAY_PREFIX_LEN].to_owned(),
        hash: ApiKeyHash::of(&plaintext),
        plaintext,
    }
}

/// A presented key that has the right shape; anything else is rejected before any lookup.
pub fn parse_presented(header: &str) -> Option<ApiKeyHash> {
    let key = header.trim();
    let secret = key.strip_prefix(SCHEME)?;
    let well_formed = secret.len() == SECRET_BYTES * 2 && secret.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then(|| ApiKeyHash::of(key))
}

/// The displayed prefix of a key already accepted (its shape checked, its hash found): how the
/// audit log names the key that acted, without hashing it again.
pub fn accepted_prefix(accepted: &str) -> String {
    accepted.trim().chars().take(DISPLAY_PREFIX_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_key_is_recognised_by_its_hash_and_shown_by_its_prefix() {
        let key = issue([7; SECRET_BYTES]);
        assert!(key.plaintext.starts_with("cek_0707"));
        assert_eq!(key.prefix, "cek_07070707");
        assert_eq!(parse_presented(&key.plaintext), Some(key.hash.clone()));
        assert_eq!(parse_presented(&format!("  {}  ", key.plaintext)), Some(key.hash));
        assert!(!key.prefix.contains(&key.plaintext[DISPLAY_PREFIX_LEN..]));
        assert_eq!(accepted_prefix(&format!(" {} ", key.plaintext)), key.prefix);
    }

    #[test]
    fn malformed_keys_are_rejected_without_a_lookup() {
        let valid = issue([1; SECRET_BYTES]).plaintext;
        let cases = [
            ("", "empty"),
            ("cek_", "scheme only"),
            (&valid[..valid.len() - 1], "one character short"),
            (
                "sk_live_0101010101010101010101010101010101010101",
                "another scheme",
            ),
            ("cek_zz01010101010101010101010101010101010101010101", "not hex"),
        ];
        for (input, description) in cases {
            assert_eq!(parse_presented(input), None, "{description}");
        }
    }
}
