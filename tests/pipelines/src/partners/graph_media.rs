//! The Graph API's media endpoints as a WhatsApp business account's `api_base_url` serves them:
//! `GET {base}/{media id}` describes a file (`{url, mime_type, file_size, id}`), and the `url` it
//! gives serves the bytes (a small PNG).

use super::json_reply;
use edge::runtime::native::{Outbound, Reply, Stack};
use serde_json::json;
use std::rc::Rc;

/// A media host at `https://{host}`, its Graph API under `/v21.0`.
#[derive(Clone)]
pub struct MediaHost {
    host: String,
    image: Rc<Vec<u8>>,
}

impl MediaHost {
    pub fn install(stack: &Stack, host: &str) -> Self {
        let mut image = b"\x89PNG\r\n\x1a\n".to_vec();
        image.extend((0..1500u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
        let media = Self {
            host: host.to_owned(),
            image: Rc::new(image),
        };
        let serving = media.clone();
        stack.partner(host, move |call| serving.answer(call));
        media
    }

    /// The base URL a channel account is given (`settings.api_base_url`).
    pub fn api_base_url(&self) -> String {
        format!("https://{}/v21.0", self.host)
    }

    /// The bytes every file is.
    pub fn image(&self) -> Vec<u8> {
        self.image.as_ref().clone()
    }

    fn answer(&self, call: &Outbound) -> Reply {
        let path = call.path().to_owned();
        let media_id = path.rsplit('/').next().unwrap_or_default().to_owned();
        if path.starts_with("/files/") {
            return Reply::status(200)
                .header("content-type", "image/png")
                .header("content-length", &self.image.len().to_string())
                .body(self.image.as_ref().clone());
        }
        json_reply(
            200,
            &json!({
                "messaging_product": "whatsapp",
                "url": format!("https://{}/files/{media_id}", self.host),
                "mime_type": "image/png",
                "sha256": "unused",
                "file_size": self.image.len(),
                "id": media_id
            }),
        )
    }
}
