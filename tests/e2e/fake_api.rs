//! A scripted chat-completion API on loopback, for tests of API-backed models (and judges).
//!
//! HTTP/1.1 with keep-alive and `Content-Length` bodies, a thread per connection. Every request
//! is recorded (method, path, headers, JSON body); the server counts how many requests it held
//! at once; and a script decides each reply: an OpenAI or Anthropic answer, any status with
//! headers (429 with `Retry-After`), a delay, malformed JSON, or a dropped connection.
//!
//! ```text
//! let api = FakeApi::start(|request| Reply::openai("Final Answer: (B)").after(Duration::from_millis(50)));
//! ... --model-args {"base_url": api.base_url(), ...}
//! assert!(api.max_in_flight() <= 8);
//! ```
//!
//! Dependencies are std and serde_json only: the openai-compat plugin's benchmark includes this
//! file as well, and uses only part of it.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use serde_json::{json, Value};

/// One request as the server read it.
#[derive(Clone, Debug)]
pub struct Request {
    /// Arrival order, from 0.
    pub index: usize,
    /// Which TCP connection carried it, from 0 (equal numbers: a kept-alive connection).
    pub connection: usize,
    /// When it had been read.
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// Names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub raw_body: Vec<u8>,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
}

impl Request {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(key, _)| *key == name).map(|(_, value)| value.as_str())
    }

    /// The text of every message (and Anthropic's top-level `system`), joined: what a script
    /// searches to recognise an item.
    pub fn prompt_text(&self) -> String {
        let mut text = String::new();
        if let Some(system) = self.body.get("system").and_then(Value::as_str) {
            text.push_str(system);
        }
        for message in self.body.get("messages").and_then(Value::as_array).into_iter().flatten() {
            match message.get("content") {
                Some(Value::String(content)) => text.push_str(content),
                Some(Value::Array(parts)) => {
                    for part in parts {
                        if let Some(part_text) = part.get("text").and_then(Value::as_str) {
                            text.push_str(part_text);
                        }
                    }
                }
                _ => {}
            }
            text.push('\n');
        }
        text
    }

    /// The content parts of the last message (images, text), or empty for plain text.
    pub fn last_parts(&self) -> Vec<Value> {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .and_then(|messages| messages.last())
            .and_then(|message| message.get("content"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }
}

/// What the server does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A status, headers and body.
    Respond { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// Waits, then does the inner reply.
    Delay(Duration, Box<Reply>),
    /// Closes the connection without answering.
    Drop,
}

impl Reply {
    /// A 200 with `body` as JSON.
    pub fn json(body: Value) -> Reply {
        Reply::status(200, body)
    }

    /// A Chat Completions answer with usage counts.
    pub fn openai(text: &str) -> Reply {
        Reply::openai_with(text, "stop", 12, 5)
    }

    /// A Chat Completions answer with its finish reason and token counts.
    pub fn openai_with(text: &str, finish_reason: &str, prompt_tokens: u64, completion_tokens: u64) -> Reply {
        Reply::json(json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }))
    }

    /// A Messages answer with usage counts.
    pub fn anthropic(text: &str) -> Reply {
        Reply::anthropic_with(text, "end_turn", 12, 5)
    }

    /// A Messages answer with its stop reason and token counts.
    pub fn anthropic_with(text: &str, stop_reason: &str, input_tokens: u64, output_tokens: u64) -> Reply {
        Reply::json(json!({
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }))
    }

    /// `status` with a JSON body.
    pub fn status(status: u16, body: Value) -> Reply {
        Reply::Respond {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_string().into_bytes(),
        }
    }

    /// `status` with an API-style error body `{"error": {"message": ...}}`.
    pub fn error(status: u16, message: &str) -> Reply {
        Reply::status(status, json!({"error": {"message": message, "type": "fake_error"}}))
    }

    /// A 200 whose body is not JSON.
    pub fn malformed() -> Reply {
        Reply::Respond {
            status: 200,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: b"{\"choices\": [{\"message\": ".to_vec(),
        }
    }

    /// The same reply with one more header.
    pub fn with_header(self, name: &str, value: &str) -> Reply {
        match self {
            Reply::Respond { status, mut headers, body } => {
                headers.push((name.to_owned(), value.to_owned()));
                Reply::Respond { status, headers, body }
            }
            Reply::Delay(delay, inner) => Reply::Delay(delay, Box::new(inner.with_header(name, value))),
            Reply::Drop => Reply::Drop,
        }
    }

    /// The same reply after `delay`.
    pub fn after(self, delay: Duration) -> Reply {
        Reply::Delay(delay, Box::new(self))
    }
}

type Script = dyn Fn(&Request) -> Reply + Send + Sync;

struct Shared {
    script: Box<Script>,
    requests: Mutex<Vec<Request>>,
    /// Whether to keep every request (a benchmark keeps none).
    record: bool,
    count: AtomicUsize,
    connections: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    stopping: AtomicBool,
}

/// A running fake API; stops accepting connections when dropped.
pub struct FakeApi {
    address: String,
    shared: Arc<Shared>,
}

impl FakeApi {
    /// Serves on a free loopback port, answering each request with `script(request)`.
    pub fn start(script: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> FakeApi {
        FakeApi::start_with(script, true)
    }

    /// As [`FakeApi::start`]; `record: false` keeps counts but not the requests.
    pub fn start_with(script: impl Fn(&Request) -> Reply + Send + Sync + 'static, record: bool) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let address = listener.local_addr().expect("local address").to_string();
        let shared = Arc::new(Shared {
            script: Box::new(script),
            requests: Mutex::new(Vec::new()),
            record,
            count: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let connection = accepting.connections.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(&accepting);
                std::thread::spawn(move || serve(stream, connection, &shared));
            }
        });
        FakeApi { address, shared }
    }

    /// `http://127.0.0.1:PORT/v1`, what a model's `base_url` should be.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// The most requests the server held at once (read, not yet answered).
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.address);
    }
}

/// Answers requests on one connection until the client closes it.
fn serve(stream: TcpStream, connection: usize, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let Ok(writer) = stream.try_clone() else { return };
    let mut writer = writer;
    let mut reader = BufReader::new(stream);
    while let Some(Incoming { method, path, headers, body: raw_body }) =
        read_request(&mut reader, &mut writer)
    {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let index = shared.count.fetch_add(1, Ordering::SeqCst);
        let body = serde_json::from_slice(&raw_body).unwrap_or(Value::Null);
        let request =
            Request { index, connection, at: Instant::now(), method, path, headers, raw_body, body };
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let mut reply = (shared.script)(&request);
        let close = request.header("connection").is_some_and(|value| value.eq_ignore_ascii_case("close"));
        if shared.record {
            shared.requests.lock().unwrap().push(request);
        }
        while let Reply::Delay(delay, inner) = reply {
            std::thread::sleep(delay);
            reply = *inner;
        }
        let written = match reply {
            Reply::Respond { status, headers, body } => write_response(&mut writer, status, &headers, &body),
            Reply::Delay(..) | Reply::Drop => Err(std::io::ErrorKind::ConnectionAborted.into()),
        };
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        if written.is_err() || close {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// A request as read off the wire.
struct Incoming {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Reads one request: request line, headers, and a `Content-Length` body. `None` at the end
/// of the connection or on a request this server does not understand.
fn read_request(reader: &mut BufReader<TcpStream>, writer: &mut TcpStream) -> Option<Incoming> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let find = |name: &str| headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
    if find("expect").is_some_and(|value| value.eq_ignore_ascii_case("100-continue")) {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").ok()?;
    }
    let length: usize = find("content-length").map(|value| value.parse().ok()).unwrap_or(Some(0))?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Incoming { method, path, headers, body })
}

fn write_response(
    writer: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut response = head.into_bytes();
    response.extend_from_slice(body);
    writer.write_all(&response)?;
    writer.flush()
}
