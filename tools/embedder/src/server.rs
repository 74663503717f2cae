//! The HTTP server: a thread per connection, requests answered in turn on each, and one
//! forward pass at a time (a pass already uses every core).

use std::io::{BufReader, BufWriter};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Embedder;
use crate::api::{self, ApiError, EmbedIn, Route};
use crate::http::{self, ReadError, Request, Response};

/// An idle keep-alive connection is closed after this long, so clients that vanish do not
/// hold threads forever.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Server {
    embedder: Embedder,
    /// Taken for each forward pass: two passes at once would only share the same cores.
    running: Mutex<()>,
}

impl Server {
    pub fn new(embedder: Embedder) -> Arc<Self> {
        Arc::new(Self {
            embedder,
            running: Mutex::new(()),
        })
    }

    /// Accepts connections until the listener fails.
    pub fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    let server = Arc::clone(&self);
                    std::thread::spawn(move || server.connection(stream));
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
            let (response, keep_alive) = match http::read_request(&mut reader, &mut writer, api::MAX_BODY) {
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
        match api::route(request.method, &request.path) {
            Route::Health => api::health_response(),
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
        match self.embedder.embed(input.texts()) {
            Ok(embeddings) => api::embeddings_response(&embeddings),
            Err(error) => {
                eprintln!("embedder: the model refused the tokenizer's output: {error}");
                ApiError::internal().into_response()
            }
        }
    }
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
