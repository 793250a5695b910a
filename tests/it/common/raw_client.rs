//! A raw-TCP client: writes hand-made bytes and reads whatever comes back until the peer
//! closes, so a test sees exactly what the proxy sent (a status, a cut-off body, or nothing).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back on one connection.
#[derive(Debug)]
pub struct RawReply {
    /// Every byte read.
    pub bytes: Vec<u8>,
    /// Whether the proxy closed the connection (or reset it) within the time limit.
    pub closed: bool,
}

impl RawReply {
    /// The status code of the first response, or `None` when nothing (or no head) came back.
    pub fn status(&self) -> Option<u16> {
        let text = String::from_utf8_lossy(&self.bytes);
        let line = text.lines().next()?;
        line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
    }

    /// The head of the first response as text (empty without one).
    pub fn head(&self) -> String {
        let end = self.head_len().unwrap_or(0);
        String::from_utf8_lossy(&self.bytes[..end]).into_owned()
    }

    /// A header of the first response (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head().lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    /// The bytes after the first head.
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.head_len().unwrap_or(self.bytes.len())..]
    }

    fn head_len(&self) -> Option<usize> {
        self.bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|at| at + 4)
    }
}

/// Reads until the peer closes or `limit` passes.
pub async fn read_until_close(stream: &mut TcpStream, limit: Duration) -> RawReply {
    let mut bytes = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => {
                return RawReply {
                    bytes,
                    closed: false,
                };
            }
            Ok(Ok(0)) | Ok(Err(_)) => {
                return RawReply {
                    bytes,
                    closed: true,
                };
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
        }
    }
}

/// Connects to `addr`, writes `request`, and reads until close or `limit`.
pub async fn exchange(addr: SocketAddr, request: &[u8], limit: Duration) -> RawReply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // A request the proxy refuses part-way may be answered before it is all written.
    let _ = stream.write_all(request).await;
    read_until_close(&mut stream, limit).await
}
