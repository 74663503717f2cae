//! A provider's media host, as the media-fetcher meets it: the Graph API's description of a
//! WhatsApp media id (`{url, mime_type, file_size, id}`) and the file it points to (at Meta's
//! host or a WhatsApp account's own `api_base_url`), a Messenger attachment URL, a Twilio
//! `MediaUrl`. One script serves every host it is installed on, and records each request with
//! its `Authorization`. The path says what a file does:
//!
//! - `/files/{id}`: a 2 KiB JPEG (or, after [`MediaHost::serve_png`], a PNG of 1.5 KiB, as the
//!   webhook tests' host serves), with its length;
//! - `/large/{id}`: 10 MiB of video with its length, `/chunked/{id}`: 3 MiB of PDF without one,
//!   in chunks of 256 KiB; `/huge/{id}`: declares 26 MiB (and sends the first 64 KiB);
//! - `/moved/{id}`: a 307 to `/files/{id}` on the host [`MediaHost::redirect_to`] names;
//! - `/flaky/{n}/{id}`: 503 to the first `n` requests for the file, then the file;
//! - `/gone/{id}`: 404, the provider no longer has it;
//! - `/slow/{seconds}/{id}`: the file, after that many seconds;
//! - any other path ending in `{id}`: WhatsApp's description of the media, pointing at
//!   `/files/{id}` on the host [`MediaHost::describe_files_at`] names.

use super::{json_reply, unique_hex};
use edge::runtime::native::{Outbound, Reply, Stack};
use serde_json::json;
use sha2::Digest;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

const MIB: usize = 1024 * 1024;

/// One request the host served.
#[derive(Debug, Clone)]
pub struct Served {
    pub host: String,
    pub path: String,
    pub authorization: Option<String>,
}

#[derive(Clone)]
pub struct MediaHost {
    state: Rc<RefCell<State>>,
}

struct State {
    host: String,
    image: Vec<u8>,
    image_type: &'static str,
    large: Vec<u8>,
    files_host: String,
    redirect_host: String,
    served: Vec<Served>,
}

impl MediaHost {
    /// The host `host`, whose descriptions and redirects point at itself until told otherwise.
    pub fn install(stack: &Stack, host: &str) -> Self {
        let media = Self {
            state: Rc::new(RefCell::new(State {
                host: host.to_owned(),
                image: jpeg(2048),
                image_type: "image/jpeg",
                large: noise(10 * MIB),
                files_host: host.to_owned(),
                redirect_host: host.to_owned(),
                served: Vec::new(),
            })),
        };
        media.serve_also(stack, host);
        media
    }

    /// The same files on another host too (a CDN, the Graph API).
    pub fn serve_also(&self, stack: &Stack, host: &str) {
        let serving = self.clone();
        stack.partner(host, move |call| serving.answer(call));
    }

    /// The base URL a WhatsApp account is given (`settings.api_base_url`) to reach this host as its
    /// Graph API.
    pub fn api_base_url(&self) -> String {
        format!("https://{}/v21.0", self.state.borrow().host)
    }

    /// WhatsApp's descriptions point at `/files/{id}` on `host`.
    pub fn describe_files_at(&self, host: &str) {
        self.state.borrow_mut().files_host = host.to_owned();
    }

    /// `/moved/{id}` redirects to `/files/{id}` on `host`.
    pub fn redirect_to(&self, host: &str) {
        self.state.borrow_mut().redirect_host = host.to_owned();
    }

    /// `/files/{id}` serves a PNG (`image/png`), and the descriptions say so.
    pub fn serve_png(&self) {
        let mut state = self.state.borrow_mut();
        let mut png = vec![0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
        png.extend(noise(1500));
        state.image = png;
        state.image_type = "image/png";
    }

    /// The bytes `/files/{id}` serves.
    pub fn image(&self) -> Vec<u8> {
        self.state.borrow().image.clone()
    }

    /// The bytes `/large/{id}` serves; `/chunked/{id}` serves their first 3 MiB.
    pub fn large(&self) -> Vec<u8> {
        self.state.borrow().large.clone()
    }

    /// Every request served, in order.
    pub fn served(&self) -> Vec<Served> {
        self.state.borrow().served.clone()
    }

    /// The requests for `id` (its description or its file, on any host).
    pub fn served_for(&self, id: &str) -> Vec<Served> {
        self.served()
            .into_iter()
            .filter(|served| served.path.contains(id))
            .collect()
    }

    fn answer(&self, call: &Outbound) -> Reply {
        let mut state = self.state.borrow_mut();
        let path = call.path().to_owned();
        state.served.push(Served {
            host: call.host().to_owned(),
            path: path.clone(),
            authorization: call.header("authorization").map(str::to_owned),
        });
        let id = path.rsplit('/').next().unwrap_or_default().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let file = |bytes: &[u8], kind: &str| {
            Reply::status(200)
                .header("content-type", kind)
                .header("content-length", &bytes.len().to_string())
                .body(bytes.to_vec())
        };
        match segments.as_slice() {
            ["files", _] => file(&state.image, state.image_type),
            ["large", _] => file(&state.large, "video/mp4").in_chunks(MIB, Duration::ZERO),
            ["chunked", _] => Reply::status(200)
                .header("content-type", "application/pdf")
                .body(state.large[..3 * MIB].to_vec())
                .in_chunks(256 * 1024, Duration::ZERO),
            // Only the declaration matters: the fetcher refuses on the header and reads no more.
            ["huge", _] => Reply::status(200)
                .header("content-type", "video/mp4")
                .header("content-length", &(26 * MIB).to_string())
                .body(vec![0; 64 * 1024]),
            ["moved", _] => {
                Reply::status(307).header("location", &format!("https://{}/files/{id}", state.redirect_host))
            }
            ["flaky", times, _] => {
                let asked = state.served.iter().filter(|served| served.path == path).count();
                if asked <= times.parse().unwrap_or(0) {
                    Reply::text(503, "media storage unavailable")
                } else {
                    file(&state.image, state.image_type)
                }
            }
            ["gone", _] => Reply::text(404, "no such media"),
            ["slow", seconds, _] => {
                file(&state.image, state.image_type).after(Duration::from_secs(seconds.parse().unwrap_or(0)))
            }
            _ => json_reply(
                200,
                &json!({
                    "messaging_product": "whatsapp",
                    "url": format!("https://{}/files/{id}", state.files_host),
                    "mime_type": state.image_type,
                    "sha256": hex::encode(sha2::Sha256::digest(&state.image)),
                    "file_size": state.image.len(),
                    "id": id
                }),
            ),
        }
    }
}

/// `size` bytes that start as a JPEG does (SOI and an APP0 marker), the rest noise.
fn jpeg(size: usize) -> Vec<u8> {
    let mut bytes = vec![0xff, 0xd8, 0xff, 0xe0];
    bytes.extend(noise(size - bytes.len()));
    bytes
}

/// `size` bytes no two calls share (xorshift: cheap enough for megabytes in a debug build).
fn noise(size: usize) -> Vec<u8> {
    let seed = u64::from_str_radix(&unique_hex(16), 16).unwrap_or(1) | 1;
    let mut state = seed;
    let mut bytes = Vec::with_capacity(size + 8);
    while bytes.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(size);
    bytes
}
