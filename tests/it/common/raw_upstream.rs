//! A raw-TCP upstream for failure tests: it frames what the proxy sends with its own strict
//! HTTP/1.1 parser (CRLF only, no obs-fold, no space before the colon, exactly one framing
//! header, `Transfer-Encoding` only `chunked`), records every request (a smuggled second
//! request would show up as one more), counts connections accepted and still open and the
//! response bytes written, and answers as told: a normal or very large response, or a reset
//! or close part-way, a silent hang, or bytes that are not HTTP.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the upstream answers each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200 with `Content-Length` and this many body bytes (written in 64 KiB chunks).
    Ok(usize),
    /// Reads the request, then resets the connection (RST) without a response.
    ResetBeforeHead,
    /// A 200 head announcing 1 MB, 1000 body bytes, then a reset (RST).
    ResetMidBody,
    /// The same, but the connection is closed normally (FIN) after the 1000 bytes.
    CloseMidBody,
    /// Reads the request and never answers (until the proxy closes the connection).
    Silent,
    /// Answers with bytes that are not an HTTP response, then closes.
    Garbage,
}

/// One request as framed by the strict parser.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// The request line, e.g. `GET /x HTTP/1.1`.
    pub line: String,
    /// Header fields in order, names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    /// Every value of header `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

struct State {
    answer: Mutex<Answer>,
    requests: Mutex<Vec<RawRequest>>,
    malformed: Mutex<Vec<String>>,
    accepted: AtomicUsize,
    open: AtomicUsize,
    written: AtomicU64,
}

/// The running raw upstream.
pub struct RawUpstream {
    pub url: String,
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl RawUpstream {
    pub async fn start(answer: Answer) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State {
            answer: Mutex::new(answer),
            requests: Mutex::new(vec![]),
            malformed: Mutex::new(vec![]),
            accepted: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            written: AtomicU64::new(0),
        });
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                shared.open.fetch_add(1, Ordering::SeqCst);
                let state = shared.clone();
                tokio::spawn(async move {
                    serve(&state, stream).await;
                    state.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        RawUpstream {
            url: format!("http://{addr}"),
            addr,
            state,
        }
    }

    pub fn set_answer(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = answer;
    }

    /// Every request framed so far, across connections.
    pub fn requests(&self) -> Vec<RawRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// What the strict parser refused (empty when the proxy sent only well-formed requests).
    pub fn malformed(&self) -> Vec<String> {
        self.state.malformed.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Connections still open.
    pub fn open(&self) -> usize {
        self.state.open.load(Ordering::SeqCst)
    }

    /// Response body bytes written so far (all connections).
    pub fn written(&self) -> u64 {
        self.state.written.load(Ordering::SeqCst)
    }

    /// Waits up to `limit` for at most `n` open connections; returns the last count seen.
    pub async fn wait_open_at_most(&self, n: usize, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let open = self.open();
            if open <= n || tokio::time::Instant::now() >= deadline {
                return open;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn serve(state: &State, mut stream: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let request = match read_request(&mut stream, &mut buf).await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(problem) => {
                state.malformed.lock().unwrap().push(problem);
                return;
            }
        };
        state.requests.lock().unwrap().push(request);
        let answer = *state.answer.lock().unwrap();
        if !respond(state, &mut stream, answer).await {
            return;
        }
    }
}

/// Answers one request; returns whether the connection stays usable.
async fn respond(state: &State, stream: &mut TcpStream, answer: Answer) -> bool {
    let head = |length: usize| {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\nX-Upstream: raw\r\n\r\n")
    };
    match answer {
        Answer::Ok(length) => {
            if stream.write_all(head(length).as_bytes()).await.is_err() {
                return false;
            }
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = length;
            while left > 0 {
                let n = left.min(chunk.len());
                if stream.write_all(&chunk[..n]).await.is_err() {
                    return false;
                }
                state.written.fetch_add(n as u64, Ordering::SeqCst);
                left -= n;
            }
            true
        }
        Answer::ResetBeforeHead => {
            let _ = stream.set_zero_linger();
            false
        }
        Answer::ResetMidBody | Answer::CloseMidBody => {
            let _ = stream.write_all(head(1_000_000).as_bytes()).await;
            let _ = stream.write_all(&[b'x'; 1000]).await;
            state.written.fetch_add(1000, Ordering::SeqCst);
            let _ = stream.flush().await;
            // Let the proxy pass the head on before the connection goes.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if answer == Answer::ResetMidBody {
                let _ = stream.set_zero_linger();
            }
            false
        }
        Answer::Silent => {
            let mut sink = [0u8; 1024];
            while let Ok(n) = stream.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
            false
        }
        Answer::Garbage => {
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
            false
        }
    }
}

/// Reads more bytes into `buf`; `Ok(false)` at end of stream.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<bool, String> {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) => Ok(false),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(true)
        }
        Err(err) => Err(format!("read failed: {err}")),
    }
}

/// Reads until `buf` holds `n` bytes.
async fn fill_to(stream: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> Result<(), String> {
    while buf.len() < n {
        if !fill(stream, buf).await? {
            return Err(format!("stream ended {} bytes short", n - buf.len()));
        }
    }
    Ok(())
}

/// Reads a CRLF-terminated line from the front of `buf` (without the CRLF).
async fn take_line(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<String, String> {
    loop {
        if let Some(at) = buf.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = buf.drain(..at + 2).take(at).collect();
            return String::from_utf8(line).map_err(|_| "line is not UTF-8".to_string());
        }
        if !fill(stream, buf).await? {
            return Err("stream ended inside a line".into());
        }
    }
}

/// Frames one request strictly. `Ok(None)`: the connection closed cleanly between requests.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<Option<RawRequest>, String> {
    while buf.is_empty() {
        if !fill(stream, buf).await? {
            return Ok(None);
        }
    }
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if !fill(stream, buf).await? {
            return Err(format!(
                "head cut short: {:?}",
                String::from_utf8_lossy(buf)
            ));
        }
    };
    let head: Vec<u8> = buf.drain(..head_end + 4).take(head_end).collect();
    let head = String::from_utf8(head).map_err(|_| "head is not UTF-8".to_string())?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default().to_string();
    let parts: Vec<&str> = line.split(' ').collect();
    if parts.len() != 3 || parts[2] != "HTTP/1.1" || line.contains(['\n', '\r']) {
        return Err(format!("bad request line {line:?}"));
    }
    let mut headers = vec![];
    for field in lines {
        let Some((name, value)) = field.split_once(':') else {
            return Err(format!("field without a colon {field:?}"));
        };
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) {
            return Err(format!("bad field name {name:?}"));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(format!("bad field value in {field:?}"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut request = RawRequest {
        line,
        headers,
        body: vec![],
    };
    let lengths = request.all("content-length");
    let codings = request.all("transfer-encoding");
    request.body = match (lengths.as_slice(), codings.as_slice()) {
        ([], []) => vec![],
        ([length], []) => {
            let n: usize = length
                .parse()
                .map_err(|_| format!("bad Content-Length {length:?}"))?;
            fill_to(stream, buf, n).await?;
            buf.drain(..n).collect()
        }
        ([], ["chunked"]) => read_chunked(stream, buf).await?,
        _ => return Err(format!("ambiguous framing: {:?}", request.headers)),
    };
    Ok(Some(request))
}

async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Vec<u8>, String> {
    let mut body = vec![];
    loop {
        let size_line = take_line(stream, buf).await?;
        let size = usize::from_str_radix(&size_line, 16)
            .map_err(|_| format!("bad chunk size {size_line:?}"))?;
        if size == 0 {
            if !take_line(stream, buf).await?.is_empty() {
                return Err("trailers are not expected".into());
            }
            return Ok(body);
        }
        fill_to(stream, buf, size + 2).await?;
        if &buf[size..size + 2] != b"\r\n" {
            return Err("chunk data not followed by CRLF".into());
        }
        body.extend(buf.drain(..size + 2).take(size));
    }
}
