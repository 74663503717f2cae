//! Files customers and CRMs exchange: which types are accepted, checked against their content,
//! and the signed links that let a webhook receiver or the embedded inbox download one.

use crate::crypto::{constant_time_eq, hmac_sha256};
use crate::ids::{AttachmentId, BusinessId};

/// The seed's limit: "Verify file size is under 10MB".
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

/// A type accepted for upload: the leading bytes its content must start with (`None`: text-like
/// or container formats whose start proves nothing useful), and the file name extensions that
/// name it.
struct Accepted {
    kind: &'static str,
    starts: Option<&'static [&'static [u8]]>,
    extensions: &'static [&'static str],
}

impl Accepted {
    /// Whether `content` starts as this type's content must (always, for a type without a
    /// signature).
    fn matches(&self, content: &[u8]) -> bool {
        self.starts
            .is_none_or(|starts| starts.iter().any(|start| content.starts_with(start)))
    }
}

const ACCEPTED: &[Accepted] = &[
    Accepted {
        kind: "image/jpeg",
        starts: Some(&[b"\xff\xd8\xff"]),
        extensions: &["jpg", "jpeg", "jpe"],
    },
    Accepted {
        kind: "image/png",
        starts: Some(&[b"\x89PNG\r\n\x1a\n"]),
        extensions: &["png"],
    },
    Accepted {
        kind: "image/gif",
        starts: Some(&[b"GIF87a", b"GIF89a"]),
        extensions: &["gif"],
    },
    Accepted {
        kind: "image/webp",
        starts: Some(&[b"RIFF"]),
        extensions: &["webp"],
    },
    Accepted {
        kind: "application/pdf",
        starts: Some(&[b"%PDF-"]),
        extensions: &["pdf"],
    },
    Accepted {
        kind: "text/plain",
        starts: None,
        extensions: &["txt", "text", "log"],
    },
    Accepted {
        kind: "text/csv",
        starts: None,
        extensions: &["csv"],
    },
    Accepted {
        kind: "application/msword",
        starts: Some(&[b"\xd0\xcf\x11\xe0"]),
        extensions: &["doc"],
    },
    Accepted {
        kind: "application/vnd.ms-excel",
        starts: Some(&[b"\xd0\xcf\x11\xe0"]),
        extensions: &["xls"],
    },
    Accepted {
        kind: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        starts: Some(&[b"PK\x03\x04"]),
        extensions: &["docx"],
    },
    Accepted {
        kind: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        starts: Some(&[b"PK\x03\x04"]),
        extensions: &["xlsx"],
    },
    Accepted {
        kind: "audio/mpeg",
        starts: Some(&[b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"]),
        extensions: &["mp3"],
    },
    Accepted {
        kind: "audio/ogg",
        starts: Some(&[b"OggS"]),
        extensions: &["ogg", "oga", "opus"],
    },
    Accepted {
        kind: "audio/aac",
        starts: None,
        extensions: &["aac"],
    },
    Accepted {
        kind: "audio/amr",
        starts: Some(&[b"#!AMR"]),
        extensions: &["amr"],
    },
    Accepted {
        kind: "video/mp4",
        starts: None,
        extensions: &["mp4", "m4v"],
    },
    Accepted {
        kind: "video/3gpp",
        starts: None,
        extensions: &["3gp", "3gpp"],
    },
];

/// Names clients give accepted types by, other than the registered one.
const ALIASES: &[(&str, &str)] = &[
    ("image/jpg", "image/jpeg"),
    ("image/pjpeg", "image/jpeg"),
    ("audio/mp3", "audio/mpeg"),
    ("audio/x-mpeg", "audio/mpeg"),
    ("application/x-pdf", "application/pdf"),
    ("text/comma-separated-values", "text/csv"),
    ("audio/3gpp", "video/3gpp"),
];

/// What a client sends when it does not know a file's type: a `File` made without one is sent
/// as `application/octet-stream` by every browser and by Node.
const UNKNOWN: &[&str] = &[
    "",
    "application/octet-stream",
    "binary/octet-stream",
    "application/unknown",
];

/// The accepted types, for the answer that refuses another.
pub const ACCEPTED_DESCRIPTION: &str = "images (jpeg, png, gif, webp), pdf, text, csv, office documents \
     (doc, docx, xls, xlsx), audio (mpeg, ogg, aac, amr) or video (mp4, 3gpp)";

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
                "files of type {kind} are not accepted; send {ACCEPTED_DESCRIPTION}"
            ),
            Self::ContentMismatch(kind) => write!(f, "the file's content is not {kind}"),
        }
    }
}

/// A file's type: the one its sender declared (parameters dropped, lowercased, aliases
/// resolved) when that is accepted and the content agrees; when the sender declared none, or only
/// `application/octet-stream`, the type its first bytes show, else the type its name's extension
/// names, else plain text for UTF-8 text. An empty file contradicts no type.
pub fn media_type_of(declared: &str, filename: &str, content: &[u8]) -> Result<&'static str, MediaTypeError> {
    let essence = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let essence = ALIASES
        .iter()
        .find(|(alias, _)| *alias == essence)
        .map_or(essence.as_str(), |(_, kind)| kind);
    if UNKNOWN.contains(&essence) {
        return inferred(filename, content);
    }
    let accepted = ACCEPTED
        .iter()
        .find(|accepted| accepted.kind == essence)
        .ok_or_else(|| MediaTypeError::NotAccepted(essence.to_owned()))?;
    if !content.is_empty() && !accepted.matches(content) {
        return Err(MediaTypeError::ContentMismatch(accepted.kind.to_owned()));
    }
    Ok(accepted.kind)
}

/// The type of a file sent without one.
fn inferred(filename: &str, content: &[u8]) -> Result<&'static str, MediaTypeError> {
    let extension = filename
        .rsplit_once('.')
        .map(|(_, extension)| extension.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let by_name = ACCEPTED
        .iter()
        .find(|accepted| accepted.extensions.contains(&extension.as_str()));
    if let Some(kind) = sniffed(content) {
        // A name that names another type with the same leading bytes (docx and xlsx are both
        // zip archives) says which it is.
        return Ok(match by_name {
            Some(named) if named.starts.is_some() && named.matches(content) => named.kind,
            _ => kind,
        });
    }
    match by_name {
        Some(named) if !content.is_empty() && !named.matches(content) => {
            Err(MediaTypeError::ContentMismatch(named.kind.to_owned()))
        }
        Some(named) => Ok(named.kind),
        None if !content.is_empty() && looks_like_text(content) => Ok("text/plain"),
        None => Err(MediaTypeError::NotAccepted(if extension.is_empty() {
            "application/octet-stream".to_owned()
        } else {
            format!("application/octet-stream (a .{extension} file)")
        })),
    }
}

/// The accepted type a file's first bytes prove, if any.
fn sniffed(content: &[u8]) -> Option<&'static str> {
    if content.starts_with(b"RIFF") && content.get(8..12) == Some(b"WEBP") {
        return Some("image/webp");
    }
    if content.get(4..8) == Some(b"ftyp") {
        return Some(if content.get(8..11) == Some(b"3gp") {
            "video/3gpp"
        } else {
            "video/mp4"
        });
    }
    ACCEPTED
        .iter()
        .filter(|accepted| accepted.kind != "image/webp" && accepted.starts.is_some())
        .find(|accepted| accepted.matches(content))
        .map(|accepted| accepted.kind)
}

/// UTF-8 without NULs or other control characters but line breaks and tabs.
fn looks_like_text(content: &[u8]) -> bool {
    std::str::from_utf8(content).is_ok_and(|text| {
        text.chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
    })
}

/// How long a signed download link works unless asked otherwise.
pub const LINK_LIFETIME_SECONDS: i64 = 15 * 60;

fn link_mac(secret: &[u8], business_id: &BusinessId, attachment_id: &AttachmentId, expires: i64) -> [u8; 32] {
    hmac_sha256(
        secret,
        &[format!("download-media|v1|{business_id}|{attachment_id}|{expires}").as_bytes()],
    )
}

/// The path a signed link downloads from (`functions/download-media`).
const DOWNLOAD_PATH: &str = "/api/download-media";

/// Signs and checks the download links of one deployment: links to a business's files that work
/// without an API key until they expire, signed with its `MEDIA_LINK_SECRET`. The runtime makes
/// one an invocation (`edge::Env::media_links`), the one place the secret is read.
pub struct MediaLinks {
    secret: Vec<u8>,
}

impl MediaLinks {
    /// The signer of the secret's value; None where the deployment sets none (or an empty one).
    pub fn of(secret: Option<String>) -> Option<Self> {
        secret.filter(|secret| !secret.is_empty()).map(|secret| Self {
            secret: secret.into_bytes(),
        })
    }

    /// The query (`id=…&expires=…&signature=…`) of a link to the business's attachment that works
    /// until `expires` (Unix seconds).
    pub fn query(&self, business_id: &BusinessId, attachment_id: &AttachmentId, expires: i64) -> String {
        let signature = hex::encode(link_mac(&self.secret, business_id, attachment_id, expires));
        format!("id={attachment_id}&expires={expires}&signature={signature}")
    }

    /// A whole link on the deployment's `origin`, working until `expires`.
    pub fn link(
        &self,
        origin: &str,
        business_id: &BusinessId,
        attachment_id: &AttachmentId,
        expires: i64,
    ) -> String {
        format!(
            "{}{DOWNLOAD_PATH}?{}",
            origin.trim_end_matches('/'),
            self.query(business_id, attachment_id, expires)
        )
    }

    /// True when `signature` was made for this attachment of this business and has not expired at
    /// `now` (Unix seconds).
    pub fn verify(
        &self,
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
            && constant_time_eq(
                &presented,
                &link_mac(&self.secret, business_id, attachment_id, expires),
            )
    }
}

/// True once a link that `expires` (Unix seconds) no longer works at `now`.
pub fn link_expired(expires: i64, now: i64) -> bool {
    now > expires
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

/// The `Content-Disposition` that downloads a file under `filename` (a [`clean_filename`]): an
/// ASCII `filename` for old clients, and the exact name as `filename*` (RFC 6266, RFC 8187), so
/// that a name in any script or with an emoji is a valid header and arrives intact.
pub fn content_disposition(filename: &str) -> String {
    let fallback: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(filename.len() * 3);
    for byte in filename.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_names_its_file_in_ascii_and_exactly() {
        assert_eq!(
            content_disposition("receipt 2.pdf"),
            "attachment; filename=\"receipt 2.pdf\"; filename*=UTF-8''receipt%202.pdf"
        );
        assert_eq!(
            content_disposition("账单 🧾.pdf"),
            "attachment; filename=\"__ _.pdf\"; filename*=UTF-8''%E8%B4%A6%E5%8D%95%20%F0%9F%A7%BE.pdf"
        );
        let header = content_disposition(&clean_filename("naïve\"quote\".txt"));
        assert!(header.is_ascii(), "{header}");
    }

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
        let cases: [(&str, &[u8], Result<&str, MediaTypeError>); 8] = [
            ("image/png", b"\x89PNG\r\n\x1a\nrest", Ok("image/png")),
            ("Image/JPEG; name=x", b"\xff\xd8\xff\xe0", Ok("image/jpeg")),
            ("image/jpg", b"\xff\xd8\xff\xe0", Ok("image/jpeg")),
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
            ("application/pdf", b"", Ok("application/pdf")),
        ];
        for (declared, content, expected) in cases {
            assert_eq!(media_type_of(declared, "file", content), expected, "{declared}");
        }
    }

    #[test]
    fn a_file_sent_without_a_type_is_known_by_its_content_then_its_name() {
        type Case<'a> = (&'a str, &'a str, &'a [u8], Result<&'a str, MediaTypeError>);
        let cases: [Case; 14] = [
            (
                "application/octet-stream",
                "receipt.pdf",
                b"",
                Ok("application/pdf"),
            ),
            (
                "application/octet-stream",
                "receipt.pdf",
                b"%PDF-1.4",
                Ok("application/pdf"),
            ),
            ("", "scan", b"%PDF-1.4", Ok("application/pdf")),
            (
                "application/octet-stream",
                "photo.bin",
                b"\x89PNG\r\n\x1a\n..",
                Ok("image/png"),
            ),
            (
                "application/octet-stream",
                "photo.png",
                b"\xff\xd8\xff\xe0",
                Ok("image/jpeg"),
            ),
            (
                "application/octet-stream",
                "a.webp",
                b"RIFF\x00\x00\x00\x00WEBPVP8 ",
                Ok("image/webp"),
            ),
            (
                "application/octet-stream",
                "clip",
                b"\x00\x00\x00\x18ftypmp42",
                Ok("video/mp4"),
            ),
            (
                "application/octet-stream",
                "clip",
                b"\x00\x00\x00\x18ftyp3gp4",
                Ok("video/3gpp"),
            ),
            (
                "application/octet-stream",
                "voice",
                b"OggS\x00\x02",
                Ok("audio/ogg"),
            ),
            (
                "application/octet-stream",
                "report.xlsx",
                b"PK\x03\x04rest",
                Ok("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            ),
            (
                "application/octet-stream",
                "notes",
                b"plain words\nand lines",
                Ok("text/plain"),
            ),
            (
                "application/octet-stream",
                "data.csv",
                b"a,b\n1,2",
                Ok("text/csv"),
            ),
            (
                "application/octet-stream",
                "setup.exe",
                b"MZ\x90\x00",
                Err(MediaTypeError::NotAccepted(
                    "application/octet-stream (a .exe file)".into(),
                )),
            ),
            (
                "application/octet-stream",
                "receipt.pdf",
                b"MZ\x90\x00",
                Err(MediaTypeError::ContentMismatch("application/pdf".into())),
            ),
        ];
        for (declared, name, content, expected) in cases {
            assert_eq!(
                media_type_of(declared, name, content),
                expected,
                "{declared} {name}"
            );
        }
    }

    #[test]
    fn a_refusal_says_which_types_are_accepted() {
        let message = MediaTypeError::NotAccepted("application/zip".into()).to_string();
        assert!(
            message.contains("application/zip") && message.contains("pdf") && message.contains("mp4"),
            "{message}"
        );
    }

    #[test]
    fn a_signed_link_works_for_its_attachment_until_it_expires() {
        let links =
            |secret: &str| MediaLinks::of(Some(secret.to_owned())).unwrap_or_else(|| panic!("a signer"));
        let signer = links("link secret");
        let (biz, other_biz) = (BusinessId::generate([1; 16]), BusinessId::generate([2; 16]));
        let (att, other) = (AttachmentId::generate([3; 16]), AttachmentId::generate([4; 16]));
        let link = signer.link("https://edge.example/", &biz, &att, 1_000);
        assert!(
            link.starts_with("https://edge.example/api/download-media?id="),
            "{link}"
        );
        let signature = link.rsplit("signature=").next().unwrap_or_default();
        assert!(signer.verify(&biz, &att, 1_000, signature, 999));
        assert!(signer.verify(&biz, &att, 1_000, signature, 1_000));
        let wrong = links("wrong secret");
        let refusals = [
            (&signer, &biz, &att, 1_000, 1_001, "expired"),
            (&signer, &biz, &other, 1_000, 999, "another attachment"),
            (&signer, &other_biz, &att, 1_000, 999, "another business"),
            (&signer, &biz, &att, 9_999, 999, "a later expiry than signed"),
            (&wrong, &biz, &att, 1_000, 999, "another secret"),
        ];
        for (signer, business, attachment, expires, now, description) in refusals {
            assert!(
                !signer.verify(business, attachment, expires, signature, now),
                "{description}"
            );
        }
        assert!(!signer.verify(&biz, &att, 1_000, "not hex", 999));
        assert!(MediaLinks::of(None).is_none() && MediaLinks::of(Some(String::new())).is_none());
    }
}
