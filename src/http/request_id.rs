//! Request ids: an incoming `X-Request-Id` is kept when it is sane (one header, 1 to 128
//! printable ASCII characters), otherwise a new one is made (16 bytes, base64url: a per-process random prefix and a
//! counter). The id
//! is set on the request, so the upstream receives it, echoed on the response, errors
//! included, and carried by a tracing span around the handler, so every log line of the
//! request names it. The span holds the method and path, never the query or a header value.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::header::Entry;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::http::body::Body;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest incoming id kept.
pub const MAX_LEN: usize = 128;

/// Whether an incoming id may be kept: 1..=128 printable ASCII characters.
pub fn is_sane(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(|b| (b' '..=b'~').contains(b))
}

/// A new id: 22 base64url characters of a per-process random 8-byte prefix followed by a
/// per-process counter. Unique within the process, unpredictable across processes, and cheap:
/// drawing 16 CSPRNG bytes per request cost about a fifth of the proxy's instructions on the
/// cache-hit path (aws-lc's RNG, measured with callgrind), and a correlation id needs no
/// secrecy. Ids are made [`BATCH`] at a time per thread into one buffer that each id is a
/// shared slice of, so an id (and its copies on the request and the response) allocates
/// nothing (#16).
pub fn generate() -> HeaderValue {
    thread_local! {
        static IDS: std::cell::RefCell<bytes::Bytes> = const { std::cell::RefCell::new(bytes::Bytes::new()) };
    }
    IDS.with_borrow_mut(|ids| {
        if ids.is_empty() {
            *ids = batch();
        }
        let id = ids.split_to(ID_LEN);
        HeaderValue::from_maybe_shared(id).unwrap_or(HeaderValue::from_static("unknown"))
    })
}

/// The length of a generated id.
const ID_LEN: usize = 22;

/// How many ids a thread makes at once.
const BATCH: usize = 64;

/// [`BATCH`] new ids, back to back.
fn batch() -> bytes::Bytes {
    static PREFIX: std::sync::OnceLock<[u8; 8]> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut random = [0u8; 8];
        if aws_lc_rs::rand::fill(&mut random).is_err() {
            // Never expected; the clock still makes ids of different processes differ.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            random = nanos.to_le_bytes();
        }
        random
    });
    let first = COUNTER.fetch_add(BATCH as u64, std::sync::atomic::Ordering::Relaxed);
    let high = u128::from(u64::from_be_bytes(*prefix)) << 64;
    let mut out = vec![0u8; BATCH * ID_LEN];
    for (n, text) in out.chunks_exact_mut(ID_LEN).enumerate() {
        encode_id(high | u128::from(first + n as u64), text);
    }
    bytes::Bytes::from(out)
}

/// The base64url alphabet (RFC 4648 §5).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `raw` (16 bytes, big-endian) as 22 base64url characters, unpadded: what
/// `URL_SAFE_NO_PAD` makes of them, in a fixed loop (#16: the general encoder took ~230
/// instructions per id).
fn encode_id(raw: u128, text: &mut [u8]) {
    // 128 bits are 21 whole sextets, then 2 bits that the last character carries high.
    for (i, c) in text.iter_mut().enumerate().take(ID_LEN - 1) {
        *c = ALPHABET[((raw >> (122 - 6 * i as u32)) & 0x3f) as usize];
    }
    text[ID_LEN - 1] = ALPHABET[((raw & 0x3) << 4) as usize];
}

/// Keeps the request's sane id or replaces it (every copy) with a new one; returns it.
pub fn assign(headers: &mut HeaderMap) -> HeaderValue {
    // One lookup of the name either way (#16).
    match headers.entry(HEADER) {
        Entry::Vacant(entry) => entry.insert(generate()).clone(),
        Entry::Occupied(mut entry) => {
            let mut values = entry.iter();
            if let (Some(value), None) = (values.next(), values.next())
                && is_sane(value)
            {
                return value.clone();
            }
            let id = generate();
            entry.insert(id.clone());
            id
        }
    }
}

/// Runs `handler` with the request's id assigned, inside a `request` span naming it, and
/// sets the id on the response. `handler` is called at once, to make its future; the
/// [`Scoped`] future polls it in the span.
pub fn scope<B, F, Fut>(mut request: Request<B>, handler: F) -> Scoped<Fut>
where
    F: FnOnce(Request<B>) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    let id = assign(request.headers_mut());
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        method = %request.method(),
        path = request.uri().path(),
    );
    // The clock is read only when the debug line below is written (#16: 157 instructions
    // per cache hit under callgrind; with RUST_LOG=warn the line never is). Asked inside the
    // span, as the line is, so a filter on the span (`[request]=debug`) still writes it.
    let started = span.in_scope(|| tracing::enabled!(tracing::Level::DEBUG).then(Instant::now));
    Scoped {
        inner: handler(request).instrument(span),
        id: Some(id),
        started,
    }
}

pin_project_lite::pin_project! {
    /// [`scope`]'s future: a future of its own rather than an `async fn`, which would keep
    /// the request and the handler's future beside the one it polls (#16: every byte of a
    /// request's future is copied when it is moved).
    pub struct Scoped<F> {
        #[pin]
        inner: Instrumented<F>,
        id: Option<HeaderValue>,
        started: Option<Instant>,
    }
}

impl<F: Future<Output = Response<Body>>> Future for Scoped<F> {
    type Output = Response<Body>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<Body>> {
        let mut this = self.project();
        let mut response = std::task::ready!(this.inner.as_mut().poll(cx));
        if let Some(started) = this.started {
            this.inner.span().in_scope(|| {
                tracing::debug!(
                    status = response.status().as_u16(),
                    micros = started.elapsed().as_micros() as u64,
                    "response"
                )
            });
        }
        if let Some(id) = this.id.take() {
            response.headers_mut().insert(HEADER, id);
        }
        Poll::Ready(response)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn sane_ids_are_kept_and_others_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_static("abc-123 x"));
        assert_eq!(assign(&mut headers), "abc-123 x");

        for bad in ["", "a\tb", &"x".repeat(MAX_LEN + 1)] {
            let mut headers = HeaderMap::new();
            headers.insert(HEADER, HeaderValue::from_str(bad).unwrap());
            let id = assign(&mut headers);
            assert_ne!(id, bad);
            assert_eq!(id.len(), 22, "{bad:?}");
            assert_eq!(headers.get_all(HEADER).iter().count(), 1);
            assert_eq!(headers[HEADER], id);
        }

        let mut headers = HeaderMap::new();
        headers.append(HEADER, HeaderValue::from_static("one"));
        headers.append(HEADER, HeaderValue::from_static("two"));
        let id = assign(&mut headers);
        assert!(id != "one" && id != "two");
        assert_eq!(headers.get_all(HEADER).iter().count(), 1);

        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        assert_ne!(assign(&mut headers).as_bytes(), b"caf\xc3\xa9");
    }

    #[test]
    fn generated_ids_are_base64url_and_differ() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        // Across batches too, and each is a whole id.
        let many: std::collections::HashSet<HeaderValue> =
            (0..3 * BATCH).map(|_| generate()).collect();
        assert_eq!(many.len(), 3 * BATCH);
        assert!(many.iter().all(|id| id.len() == ID_LEN && is_sane(id)));
        assert!(
            a.as_bytes()
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
        );
        assert!(is_sane(&a));
    }

    #[test]
    fn the_id_encoder_is_base64url() {
        for raw in [
            0u128,
            u128::MAX,
            1,
            1 << 127,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
        ] {
            let mut text = [0u8; ID_LEN];
            encode_id(raw, &mut text);
            assert_eq!(
                std::str::from_utf8(&text).unwrap(),
                URL_SAFE_NO_PAD.encode(raw.to_be_bytes()),
                "{raw:#x}"
            );
        }
    }

    #[test]
    fn the_longest_sane_id_is_kept() {
        let long = "y".repeat(MAX_LEN);
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_str(&long).unwrap());
        assert_eq!(assign(&mut headers), long.as_str());
    }
}
