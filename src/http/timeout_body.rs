//! The request body read timeout: a client that stops sending its body part-way must not hold
//! a connection to the upstream (and a connection slot here) forever. [`TimeoutBody`] wraps
//! the incoming body passed upstream and fails with [`BodyReadTimeout`] when no frame arrives
//! for the configured time; the upstream request is then aborted and the client gets 408.
//! Any error of the client's body itself (a bad chunk size, a connection cut mid-body) comes
//! out as [`RequestBodyFailed`], so the proxy can tell it from an upstream failure: it is a
//! request-framing error (400 and close, see [`crate::http::framing`]).

use std::error::Error as StdError;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

pub type BoxError = Box<dyn StdError + Send + Sync>;

/// No body frame arrived from the client within the timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the client sent no request body data for {0:?}")]
pub struct BodyReadTimeout(pub Duration);

impl BodyReadTimeout {
    /// Whether `err` or any error in its source chain is a body read timeout.
    pub fn is_cause_of(err: &(dyn StdError + 'static)) -> bool {
        caused_by::<Self>(err)
    }
}

/// Reading the client's request body failed (hyper's error is the source).
#[derive(Debug, thiserror::Error)]
#[error("the request body is malformed or incomplete")]
pub struct RequestBodyFailed(#[source] pub BoxError);

impl RequestBodyFailed {
    /// Whether `err` or any error in its source chain is a failed request body.
    pub fn is_cause_of(err: &(dyn StdError + 'static)) -> bool {
        caused_by::<Self>(err)
    }
}

/// Whether `err` or any error in its source chain is an `E`.
fn caused_by<E: StdError + 'static>(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err.is::<E>() {
            return true;
        }
        current = err.source();
    }
    false
}

/// A body whose every wait for the next frame is limited to `timeout`.
pub struct TimeoutBody<B> {
    inner: B,
    timeout: Duration,
    /// Armed while the inner body is pending; disarmed by each frame.
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl<B> TimeoutBody<B> {
    pub fn new(inner: B, timeout: Duration) -> Self {
        TimeoutBody {
            inner,
            timeout,
            sleep: None,
            armed: false,
        }
    }
}

impl<B> Body for TimeoutBody<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.armed = false;
            let failed = |err: B::Error| -> BoxError { Box::new(RequestBodyFailed(err.into())) };
            return Poll::Ready(frame.map(|result| result.map_err(failed)));
        }
        let deadline = Instant::now() + this.timeout;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !this.armed {
            sleep.as_mut().reset(deadline);
            this.armed = true;
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyReadTimeout(this.timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::BodyExt;
    use tokio::sync::mpsc;

    /// A body fed chunk by chunk by the test.
    struct Fed(mpsc::Receiver<Bytes>);

    impl Body for Fed {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.get_mut()
                .0
                .poll_recv(cx)
                .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
        }
    }

    #[tokio::test]
    async fn a_stalled_body_times_out_and_a_steady_one_does_not() {
        let (tx, rx) = mpsc::channel(4);
        let mut body = TimeoutBody::new(Fed(rx), Duration::from_millis(300));
        let feeder = tokio::spawn(async move {
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(150)).await;
                tx.send(Bytes::from_static(b"x")).await.unwrap();
            }
            tx
        });
        for _ in 0..4 {
            let frame = body.frame().await.unwrap().unwrap();
            assert_eq!(frame.into_data().unwrap(), "x");
        }
        let started = Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(BodyReadTimeout::is_cause_of(&*err), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(290));
        drop(feeder.await.unwrap());
    }
}
