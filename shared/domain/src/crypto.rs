//! The keyed hashes every signature here is made of, written once: HMAC-SHA256 (Meta, Mailgun,
//! our webhooks and download links, and the CRMs' webhooks), HMAC-SHA1 (Twilio), and the
//! constant-time comparison every check goes through.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// HMAC-SHA256 of the concatenation of `parts`, keyed with `key` (of any length).
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length: new_from_slice cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA1 of the concatenation of `parts`, keyed with `key` (Twilio's request signatures).
pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
        return [0; 20];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Random bytes of a bearer secret (an SSO token, a console link or session): 256 bits, nothing to
/// guess, so a fast hash is enough to store one.
pub const BEARER_SECRET_BYTES: usize = 32;
/// Base64url without padding of [`BEARER_SECRET_BYTES`].
const BEARER_SECRET_CHARS: usize = 43;

/// A bearer secret: `scheme`, then the random bytes in base64url, so that it goes into a query
/// string or a cookie as it is.
pub fn bearer_secret(scheme: &str, random: [u8; BEARER_SECRET_BYTES]) -> String {
    use base64::Engine;
    format!(
        "{scheme}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    )
}

/// Whether `presented` has the shape of a bearer secret of `scheme`: what is checked before any
/// lookup, so that junk costs nothing.
pub fn is_bearer_secret(scheme: &str, presented: &str) -> bool {
    presented.strip_prefix(scheme).is_some_and(|secret| {
        secret.len() == BEARER_SECRET_CHARS
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// SHA-256 of `data`, as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Compares two secrets in time independent of where they differ (and of their lengths: both
/// are hashed first).
pub fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    let left = Sha256::digest(left);
    let right = Sha256::digest(right);
    left.iter()
        .zip(right.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmacs_match_the_rfc_4231_and_2202_vectors() {
        // RFC 4231, test case 2; RFC 2202, test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha1(b"Jefe", &[b"what do ya want for nothing?"])),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn equal_secrets_compare_equal_and_others_do_not() {
        assert!(constant_time_eq(b"secret-token", b"secret-token"));
        assert!(!constant_time_eq(b"secret-token", b"secret-tokem"));
        assert!(!constant_time_eq(b"secret-token", b"secret"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
