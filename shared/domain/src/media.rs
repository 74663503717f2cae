//! Files customers and CRMs exchange: which types are accepted, checked against their content,
//! and the signed links that let a webhook receiver or the embedded inbox download one.

use crate::crypto::{constant_time_eq, hmac_sha256};
use crate::ids::{AttachmentId, BusinessId};

/// Types accepted for upload, with the leading bytes their content must start with (`None`:
/// text-like or container formats whose start proves nothing useful).
const ACCEPTED: &[(&str, Option<&[&[u8]]>)] = &[
    ("image/jpeg", Some(&[b"\xff\xd8\xff"])),
    ("image/png", Some(&[b"\x89PNG\r\n\x1a\n"])),
    ("image/gif", Some(&[b"GIF87a", b"GIF89a"])),
    ("image/webp", Some(&[b"RIFF"])),
    ("application/pdf", Some(&[b"%PDF-"])),
    ("text/plain", None),
    ("text/csv", None),
    ("application/msword", Some(&[b"\xd0\xcf\x11\xe0"])),
    ("application/vnd.ms-excel", Some(&[b"\xd0\xcf\x11\xe0"])),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some(&[b"PK\x03\x04"]),
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some(&[b"PK\x03\x04"]),
    ),
    (
        "audio/mpeg",
        Some(&[b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"]),
    ),
    ("audio/ogg", Some(&[b"OggS"])),
    ("audio/aac", None),
    ("audio/amr", Some(&[b"#!AMR"])),
    ("video/mp4", None),
    ("video/3gpp", None),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaTypeError {
    NotAccepted(String),
    ContentMismatch(String),
}

impl std::fmt::Display for MediaTypeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAccepted(kind) => write!(
                f,
                "files of type {kind} are not accepted; send images (jpeg, png, gif, webp), pdf, text, csv, \
                 office documents, audio (mpeg, ogg, aac, amr) or video (mp4, 3gpp)"
            ),
            Self::ContentMismatch(kind) => write!(f, "the file's content is not {kind}"),
        }
    }
}

/// The declared type (parameters dropped, lowercased), if it is accepted and the content agrees.
pub fn check_media_type(declared: &str, content: &[u8]) -> Result<&'static str, MediaTypeError> {
    let essence = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let (kind, signatures) = ACCEPTED
        .iter()
        .find(|(kind, _)| *kind == essence)
        .ok_or_else(|| {
            MediaTypeError::NotAccepted(if essence.is_empty() {
                "(none)".into()
            } else {
                essence.clone()
            })
        })?;
    match signatures {
        Some(starts) if !starts.iter().any(|start| content.starts_with(start)) => {
            Err(MediaTypeError::ContentMismatch((*kind).to_owned()))
        }
        _ => Ok(kind),
    }
}

/// How long a signed download link works unless asked otherwise.
pub const LINK_LIFETIME_SECONDS: i64 = 15 * 60;

fn link_mac(secret: &[u8], business_id: &BusinessId, attachment_id: &AttachmentId, expires: i64) -> [u8; 32] {
    hmac_sha256(
        secret,
        &[format!("download-media|v1|{business_id}|{attachment_id}|{expires}").as_bytes()],
    )
}

/// The query of a link that downloads one attachment until `expires` (Unix seconds) without an
/// API key: `id=…&expires=…&signature=…`.
pub fn signed_query(
    secret: &[u8],
    business_id: &BusinessId,
    attachment_id: &AttachmentId,
    expires: i64,
) -> String {
    let signature = hex::encode(link_mac(secret, business_id, attachment_id, expires));
    format!("id={attachment_id}&expires={expires}&signature={signature}")
}

/// True once a link that `expires` (Unix seconds) no longer works at `now`.
pub fn link_expired(expires: i64, now: i64) -> bool {
    now > expires
}

/// True when `signature` was made for this attachment of this business and has not expired.
pub fn verify_link(
    secret: &[u8],
    business_id: &BusinessId,
    attachment_id: &AttachmentId,
    expires: i64,
    signature: &str,
    now: i64,
) -> bool {
    let Ok(presented) = hex::decode(signature.trim()) else {
        return false;
    };
    !link_expired(expires, now)
        && constant_time_eq(&presented, &link_mac(secret, business_id, attachment_id, expires))
}

/// Keeps a filename usable in a Content-Disposition header and on any file system.
pub fn clean_filename(name: &str) -> String {
    let cleaned: String = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*'))
        .take(200)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "attachment".to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_paths_and_characters_that_break_headers() {
        let cases = [
            ("receipt.pdf", "receipt.pdf"),
            ("../../etc/passwd", "passwd"),
            ("C:\\Users\\x\\photo.jpg", "photo.jpg"),
            ("a\"b\r\n.txt", "ab.txt"),
            (".hidden", "hidden"),
            ("", "attachment"),
            ("///", "attachment"),
        ];
        for (input, expected) in cases {
            assert_eq!(clean_filename(input), expected, "{input:?}");
        }
    }

    #[test]
    fn accepted_types_must_match_their_content() {
        let cases: [(&str, &[u8], Result<&str, MediaTypeError>); 7] = [
            ("image/png", b"\x89PNG\r\n\x1a\nrest", Ok("image/png")),
            ("Image/JPEG; name=x", b"\xff\xd8\xff\xe0", Ok("image/jpeg")),
            ("application/pdf", b"%PDF-1.7", Ok("application/pdf")),
            ("text/plain", b"hello", Ok("text/plain")),
            (
                "image/png",
                b"MZ\x90\x00 an executable",
                Err(MediaTypeError::ContentMismatch("image/png".into())),
            ),
            (
                "application/x-msdownload",
                b"MZ",
                Err(MediaTypeError::NotAccepted("application/x-msdownload".into())),
            ),
            ("", b"", Err(MediaTypeError::NotAccepted("(none)".into()))),
        ];
        for (declared, content, expected) in cases {
            assert_eq!(check_media_type(declared, content), expected, "{declared}");
        }
    }

    #[test]
    fn a_signed_link_works_for_its_attachment_until_it_expires() {
        let secret = b"link secret";
        let (biz, other_biz) = (BusinessId::generate([1; 16]), BusinessId::generate([2; 16]));
        let (att, other) = (AttachmentId::generate([3; 16]), AttachmentId::generate([4; 16]));
        let query = signed_query(secret, &biz, &att, 1_000);
        let signature = query.rsplit("signature=").next().unwrap_or_default();
        assert!(verify_link(secret, &biz, &att, 1_000, signature, 999));
        assert!(verify_link(secret, &biz, &att, 1_000, signature, 1_000));
        let refusals = [
            (secret.as_slice(), &biz, &att, 1_000, 1_001, "expired"),
            (secret.as_slice(), &biz, &other, 1_000, 999, "another attachment"),
            (
                secret.as_slice(),
                &other_biz,
                &att,
                1_000,
                999,
                "another business",
            ),
            (
                secret.as_slice(),
                &biz,
                &att,
                9_999,
                999,
                "a later expiry than signed",
            ),
            (
                b"wrong secret".as_slice(),
                &biz,
                &att,
                1_000,
                999,
                "another secret",
            ),
        ];
        for (key, business, attachment, expires, now, description) in refusals {
            assert!(
                !verify_link(key, business, attachment, expires, signature, now),
                "{description}"
            );
        }
        assert!(!verify_link(secret, &biz, &att, 1_000, "not hex", 999));
    }
}
