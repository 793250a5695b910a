//! Graceful shutdown of one accept loop's connections, at no cost per request: a serving
//! connection learns of a shutdown from one atomic load when its task is polled anyway, and
//! is woken for it by a notification registered once per connection. (hyper-util's
//! `GracefulShutdown` watcher plus a second watch channel for the forced close polled two
//! watch futures on every wake of every connection task: ~4% of a proxied request's
//! instructions, #16.)
//!
//! Phases: serving → draining (each connection is told to finish its in-flight requests and
//! close) → closing (what is still open is dropped). The accept loop owns the [`Drain`];
//! dropping it closes.
//!
//! May use: tokio's sync primitives, hyper-util's `GracefulConnection` trait.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::task::Poll;

use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::Notify;
use tokio::time::Instant;

const SERVING: u8 = 0;
const DRAINING: u8 = 1;
const CLOSING: u8 = 2;

struct Shared {
    phase: AtomicU8,
    /// Notified (all waiters) on each phase change.
    changed: Notify,
    /// Connections not yet ended.
    open: AtomicUsize,
    /// Notified when `open` drops to zero.
    idle: Notify,
}

impl Shared {
    /// Resolves once the phase is at least `phase`.
    async fn reached(&self, phase: u8) {
        until(&self.changed, || self.phase.load(Ordering::SeqCst) >= phase).await
    }
}

/// Resolves once `done` holds, checked after registering for `notify` each time, so a
/// `notify_waiters` between the check and the wait is not lost.
async fn until(notify: &Notify, done: impl Fn() -> bool) {
    loop {
        let mut notified = pin!(notify.notified());
        notified.as_mut().enable();
        if done() {
            return;
        }
        notified.await;
    }
}

/// One accept loop's connections; closes them all when dropped.
pub struct Drain(Arc<Shared>);

/// One connection's membership of a [`Drain`]; the connection counts as open until dropped.
pub struct Member(Arc<Shared>);

/// How a connection served through [`Member::serve`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It ended by itself (the client closed it, an error, or it finished after a drain).
    Done,
    /// No request began within the first-request limit; it was dropped.
    NoRequest,
    /// It was still open when the drain ended and was dropped.
    Closed,
}

impl Default for Drain {
    fn default() -> Self {
        Drain(Arc::new(Shared {
            phase: AtomicU8::new(SERVING),
            changed: Notify::new(),
            open: AtomicUsize::new(0),
            idle: Notify::new(),
        }))
    }
}

impl Drain {
    /// A new connection's membership.
    pub fn member(&self) -> Member {
        self.0.open.fetch_add(1, Ordering::SeqCst);
        Member(self.0.clone())
    }

    /// Connections still open.
    pub fn open(&self) -> usize {
        self.0.open.load(Ordering::SeqCst)
    }

    /// Tells every connection to finish and close, and resolves when none is open.
    pub async fn drain(&self) {
        self.set(DRAINING);
        until(&self.0.idle, || self.open() == 0).await
    }

    fn set(&self, phase: u8) {
        self.0.phase.fetch_max(phase, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.set(CLOSING);
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Member {
    /// Resolves once the drain has begun: what a connection waits on before it is served
    /// (its first bytes, a TLS handshake) ends then.
    pub async fn draining(&self) {
        self.0.reached(DRAINING).await
    }

    /// Drives `connection` to its end: while serving, each poll checks the phase with one
    /// load; on a drain it shuts the connection down gracefully; on the close it drops it.
    /// Until `seen` is set (by the first request), the connection is also dropped at
    /// `first_request` (if any).
    ///
    /// The notification is registered with the waker of the first poll only, so this must be
    /// awaited directly by its task (as the accept loop does), never under a combinator that
    /// polls it with a different waker each time.
    pub async fn serve<C>(
        &self,
        connection: C,
        first_request: Option<Instant>,
        seen: &AtomicBool,
    ) -> Ended
    where
        C: GracefulConnection,
    {
        let shared = &*self.0;
        let mut connection = pin!(connection);
        let mut deadline = first_request.map(|at| Box::pin(tokio::time::sleep_until(at)));
        // Registered once: the task's waker stays the same, so a phase change wakes it and
        // the poll below sees the phase without polling this again.
        let mut woken = pin!(shared.changed.notified());
        woken.as_mut().enable();
        let mut registered = false;
        let serving = poll_fn(|cx| {
            if !registered {
                registered = true;
                let _ = woken.as_mut().poll(cx);
            }
            if shared.phase.load(Ordering::SeqCst) != SERVING {
                return Poll::Ready(None);
            }
            if connection.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Some(Ended::Done));
            }
            if let Some(sleep) = deadline.as_mut() {
                if seen.load(Ordering::Relaxed) {
                    deadline = None;
                } else if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Ended::NoRequest));
                }
            }
            Poll::Pending
        })
        .await;
        if let Some(ended) = serving {
            return ended;
        }
        if shared.phase.load(Ordering::SeqCst) >= CLOSING {
            return Ended::Closed;
        }
        connection.as_mut().graceful_shutdown();
        tokio::select! {
            _ = connection => Ended::Done,
            _ = shared.reached(CLOSING) => Ended::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle HTTP/1 connection (a duplex pipe whose client sends nothing) served through
    /// a member: polled once, it learns of the drain only through the notification it
    /// registered then, shuts down and ends; then the drain is done.
    #[tokio::test]
    async fn an_idle_connection_is_woken_by_the_drain_and_ends_it() {
        let drain = Drain::default();
        let member = drain.member();
        let (_client, server) = tokio::io::duplex(1024);
        let service = hyper::service::service_fn(|_request| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(server), service);
        let seen = AtomicBool::new(false);
        let served = tokio::spawn(async move { member.serve(connection, None, &seen).await });
        tokio::task::yield_now().await;
        assert_eq!(drain.open(), 1);
        tokio::time::timeout(std::time::Duration::from_secs(5), drain.drain())
            .await
            .expect("the idle connection ends on the drain");
        assert_eq!(served.await.unwrap(), Ended::Done);
    }

    #[tokio::test]
    async fn an_empty_drain_is_done_at_once() {
        let drain = Drain::default();
        let member = drain.member();
        assert_eq!(drain.open(), 1);
        drop(member);
        assert_eq!(drain.open(), 0);
        tokio::time::timeout(std::time::Duration::from_secs(1), drain.drain())
            .await
            .expect("nothing open");
    }
}
