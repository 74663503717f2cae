//! The HTTP server: a thread per connection, requests answered in turn on each, and one
//! forward pass at a time (a pass already uses every core).

use std::io::{BufReader, BufWriter};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Embedder;
use crate::api::{self, ApiError, EmbedIn, Route};
use crate::http::{self, Method, ReadError, Request, Response};
use crate::vector_api;
use crate::vectors::Index;

/// An idle keep-alive connection is closed after this long, so clients that vanish do not
/// hold threads forever.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once; one more is answered 503 and closed, so that a local process
/// opening connections without end cannot exhaust threads and memory.
const MAX_CONNECTIONS: usize = 64;

pub struct Server {
    embedder: Embedder,
    /// Taken for each forward pass: two passes at once would only share the same cores.
    running: Mutex<()>,
    vectors: Index,
    connections: AtomicUsize,
    /// The last generation request's body (`Route::LastGeneration`).
    last_generation: Mutex<Option<Vec<u8>>>,
    /// Tokens embedded so far (`Route::Usage`).
    embedded_tokens: AtomicUsize,
}

impl Server {
    pub fn new(embedder: Embedder, vectors: Index) -> Arc<Self> {
        Arc::new(Self {
            embedder,
            running: Mutex::new(()),
            vectors,
            connections: AtomicUsize::new(0),
            last_generation: Mutex::new(None),
            embedded_tokens: AtomicUsize::new(0),
        })
    }

    /// Accepts connections until the listener fails.
    pub fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    if self.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                        self.connections.fetch_sub(1, Ordering::SeqCst);
                        refuse_busy(stream);
                        continue;
                    }
                    let server = Arc::clone(&self);
                    std::thread::spawn(move || {
                        server.connection(stream);
                        server.connections.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                // A connection reset before it was accepted, or a file-descriptor limit
                // reached: the next accept may work.
                Err(error) => eprintln!("embedder: accept failed: {error}"),
            }
        }
        Ok(())
    }

    fn connection(&self, stream: TcpStream) {
        let (Ok(()), Ok(read_half), Ok(())) = (
            stream.set_read_timeout(Some(IDLE_TIMEOUT)),
            stream.try_clone(),
            stream.set_nodelay(true),
        ) else {
            return;
        };
        let mut reader = BufReader::new(read_half);
        let mut writer = BufWriter::new(stream);
        loop {
            let (response, keep_alive) =
                match http::read_request(&mut reader, &mut writer, vector_api::MAX_BODY) {
                    Ok(None) | Err(ReadError::Io(_)) => return,
                    Ok(Some(request)) => {
                        let started = Instant::now();
                        let response = self.answer(&request);
                        eprintln!(
                            "embedder: {} {} {} {} ms",
                            request.method.as_str(),
                            request.path,
                            response.status,
                            started.elapsed().as_millis()
                        );
                        (response, request.keep_alive)
                    }
                    Err(error) => (refusal(error), false),
                };
            if http::write_response(&mut writer, &response, keep_alive).is_err() || !keep_alive {
                return;
            }
        }
    }

    fn answer(&self, request: &Request) -> Response {
        // A page on another site that resolves its name to this machine (DNS rebinding) sends
        // its own Host: only the loopback names are answered.
        if !is_loopback_host(&request.host) {
            return ApiError {
                status: 421,
                code: 7000,
                message: "this server answers only requests to 127.0.0.1, ::1 or localhost".into(),
            }
            .into_response();
        }
        if let Some(operation) = vector_api::operation(&request.path) {
            if request.method != Method::Post {
                let mut response = ApiError::wrong_method("POST").into_response();
                response.allow = Some("POST");
                return response;
            }
            return vector_api::answer(&self.vectors, operation, &request.body);
        }
        if request.body.len() > api::MAX_BODY {
            return ApiError {
                status: 413,
                code: 5006,
                message: format!("the body is over {} bytes", api::MAX_BODY),
            }
            .into_response();
        }
        match api::route(request.method, &request.path) {
            Route::Health => api::health_response(),
            Route::Generate => {
                if let Ok(mut last) = self.last_generation.lock() {
                    *last = Some(request.body.clone());
                }
                crate::generate::answer(&request.body)
            }
            Route::LastGeneration => match self.last_generation.lock().ok().and_then(|last| last.clone()) {
                Some(body) => Response::json(200, body),
                None => ApiError::not_found().into_response(),
            },
            Route::Usage => {
                let tokens = self.embedded_tokens.load(Ordering::Relaxed);
                Response::json(200, format!("{{\"embedded_tokens\":{tokens}}}").into_bytes())
            }
            Route::Run => match EmbedIn::parse(&request.body) {
                Ok(input) => self.embed(&input),
                Err(error) => error.into_response(),
            },
            Route::WrongMethod { allow } => {
                let mut response = ApiError::wrong_method(allow).into_response();
                response.allow = Some(allow);
                response
            }
            Route::NotFound => ApiError::not_found().into_response(),
        }
    }

    fn embed(&self, input: &EmbedIn) -> Response {
        // A poisoned lock only means another pass panicked; the model itself is read-only.
        let _turn = self
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match self.embedder.embed_counting(input.texts()) {
            Ok((embeddings, tokens)) => {
                self.embedded_tokens.fetch_add(tokens, Ordering::Relaxed);
                api::embeddings_response(&embeddings)
            }
            Err(error) => {
                eprintln!("embedder: the model refused the tokenizer's output: {error}");
                ApiError::internal().into_response()
            }
        }
    }
}

/// `127.0.0.1`, `localhost` or `[::1]`, with any port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    matches!(name, "127.0.0.1" | "localhost" | "::1")
}

/// Answers a connection over [`MAX_CONNECTIONS`] with a 503 and closes it.
fn refuse_busy(stream: TcpStream) {
    let mut writer = BufWriter::new(stream);
    let response = ApiError {
        status: 503,
        code: 5000,
        message: format!("more than {MAX_CONNECTIONS} connections at once"),
    }
    .into_response();
    let _ = http::write_response(&mut writer, &response, false);
}

/// The answer to a request that could not be read.
fn refusal(error: ReadError) -> Response {
    let (status, message) = match error {
        ReadError::Malformed(why) => (400, why.to_owned()),
        ReadError::HeadTooLarge => (431, "the request head is over 16 KiB".to_owned()),
        ReadError::BodyTooLarge { limit } => (413, format!("the body is over {limit} bytes")),
        ReadError::LengthRequired => (411, "send the body with a Content-Length, not chunked".to_owned()),
        ReadError::Io(error) => (400, error.to_string()),
    };
    ApiError {
        status,
        code: 5006,
        message,
    }
    .into_response()
}
