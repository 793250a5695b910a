//! Reusable timers, kept per connection (#16). A connection arms a timer at least twice per
//! request: hyper's header read timeout while it waits for a request head (`[server]
//! header_read_timeout`) and the route's upstream timeout while it waits for the response.
//! A new `tokio::time::Sleep` each time costs an allocation, and registering it in the
//! runtime's timer wheel when first polled and removing it when dropped each take the wheel's
//! lock. A [`ConnTimer`] keeps one `Sleep` for one kind of wait instead: it is taken for each wait,
//! reset to the new deadline (a later deadline than the one it is registered at is a single
//! atomic store, tokio re-files it only when the old one comes), and put back when the wait
//! ends. A wait that finds it taken (HTTP/2 streams in parallel) makes its own.
//!
//! May use: tokio's timer and hyper's `Timer` trait; nothing of the config or the proxy.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::time::Sleep;

/// A connection's reusable timer; clones share it. Also hyper's timer for the connection
/// (its header read timeout).
#[derive(Clone, Default)]
pub struct ConnTimer {
    slot: Arc<Mutex<Option<Pin<Box<Sleep>>>>>,
}

impl ConnTimer {
    /// The connection's sleep (or a new one when it is in use), set to `deadline`. Must be
    /// called on the connection's runtime.
    pub fn arm(&self, deadline: tokio::time::Instant) -> Pin<Box<Sleep>> {
        let held = self.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        match held {
            Some(mut sleep) => {
                sleep.as_mut().reset(deadline);
                sleep
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        }
    }

    /// `work`'s output, or `None` when `deadline` comes first (no deadline: `work` alone,
    /// as `tokio::time::timeout` waits when its deadline overflows). A future of its own
    /// rather than an `async fn`, which would hold `work` twice (its argument and the pinned
    /// copy it polls: 2.8 KB instead of 1.4 KB around a forwarded request, moved with it, #16).
    pub fn limit<F: Future>(
        &self,
        deadline: Option<tokio::time::Instant>,
        work: F,
    ) -> Limit<'_, F> {
        Limit {
            work,
            sleep: deadline.map(|deadline| self.arm(deadline)),
            owner: self,
        }
    }

    /// Gives `sleep` back for the connection's next wait.
    pub fn put(&self, sleep: Pin<Box<Sleep>>) {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(sleep);
        }
    }
}

pin_project_lite::pin_project! {
    /// [`ConnTimer::limit`]'s future.
    pub struct Limit<'a, F> {
        #[pin]
        work: F,
        sleep: Option<Pin<Box<Sleep>>>,
        owner: &'a ConnTimer,
    }

    impl<F> PinnedDrop for Limit<'_, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(sleep) = this.sleep.take() {
                this.owner.put(sleep);
            }
        }
    }
}

impl<F: Future> Future for Limit<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let had_budget = tokio::task::coop::has_budget_remaining();
        if let Poll::Ready(out) = this.work.poll(cx) {
            return Poll::Ready(Some(out));
        }
        let Some(sleep) = this.sleep.as_mut() else {
            return Poll::Pending;
        };
        // As `tokio::time::timeout` does: when `work` spent the task's budget, the deadline
        // is still looked at (a spent budget makes a sleep pending even when it is due).
        let elapsed = if had_budget && !tokio::task::coop::has_budget_remaining() {
            Pin::new(&mut tokio::task::unconstrained(sleep.as_mut())).poll(cx)
        } else {
            sleep.as_mut().poll(cx)
        };
        elapsed.map(|()| None)
    }
}

/// A sleep lent to hyper; back in its connection's slot when hyper drops it (`sleep` is
/// `None` only then).
struct Lent {
    sleep: Option<Pin<Box<Sleep>>>,
    owner: ConnTimer,
}

impl Future for Lent {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.sleep.as_mut() {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Ready(()),
        }
    }
}

impl hyper::rt::Sleep for Lent {}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(sleep) = self.sleep.take() {
            self.owner.put(sleep);
        }
    }
}

impl hyper::rt::Timer for ConnTimer {
    fn sleep(&self, duration: std::time::Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        // A duration past what an instant can hold: a deadline ~30 years ahead.
        let now = self.now();
        let far = std::time::Duration::from_secs(30 * 365 * 86_400);
        self.sleep_until(now.checked_add(duration).unwrap_or(now + far))
    }

    /// tokio's clock, which the deadlines are converted to.
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Lent {
            sleep: Some(self.arm(deadline.into())),
            owner: self.clone(),
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        // A `Lent` holds its sleep until it is dropped.
        match sleep.as_mut().downcast_mut_pin::<Lent>() {
            Some(mut lent) => {
                if let Some(inner) = lent.sleep.as_mut() {
                    inner.as_mut().reset(new_deadline.into());
                }
            }
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hyper::rt::Timer;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn one_sleep_serves_each_wait_and_fires_at_its_own_deadline() {
        let timer = ConnTimer::default();
        let start = tokio::time::Instant::now();
        let first = timer.arm(start + 20 * MS);
        let first_addr = &*first as *const Sleep;
        let mut first = first;
        (&mut first).await;
        assert!(start.elapsed() >= 20 * MS);
        timer.put(first);

        // Taken again: the same sleep, waiting again until its new deadline.
        let mut sleep = timer.arm(tokio::time::Instant::now() + 10_000 * MS);
        assert_eq!(&*sleep as *const Sleep, first_addr);
        timer.put(sleep);
        let before = tokio::time::Instant::now();
        sleep = timer.arm(before + 30 * MS);
        assert_eq!(&*sleep as *const Sleep, first_addr);
        (&mut sleep).await;
        assert!(before.elapsed() >= 30 * MS);

        // An earlier deadline than the one it is filed at still fires on time.
        let mut sleep = {
            timer.put(sleep);
            let mut s = timer.arm(tokio::time::Instant::now() + 10_000 * MS);
            timer.put(s);
            s = timer.arm(tokio::time::Instant::now() + 20 * MS);
            s
        };
        let waited = tokio::time::timeout(2_000 * MS, &mut sleep).await;
        assert!(waited.is_ok(), "reset to an earlier deadline");

        // Taken: a second wait makes its own, and only one is kept.
        timer.put(sleep);
        let a = timer.arm(tokio::time::Instant::now() + MS);
        let b = timer.arm(tokio::time::Instant::now() + MS);
        assert_ne!(&*a as *const Sleep, &*b as *const Sleep);
        timer.put(a);
        timer.put(b);
        assert!(timer.slot.lock().unwrap().is_some());
    }

    #[tokio::test]
    async fn limit_answers_the_work_or_none_at_the_deadline() {
        let timer = ConnTimer::default();
        let now = tokio::time::Instant::now();
        assert_eq!(
            timer.limit(Some(now + 1_000 * MS), async { 7 }).await,
            Some(7)
        );
        assert!(timer.slot.lock().unwrap().is_some(), "given back");
        let before = tokio::time::Instant::now();
        let slow = tokio::time::sleep(10_000 * MS);
        assert_eq!(timer.limit(Some(before + 20 * MS), slow).await, None);
        assert!(before.elapsed() >= 20 * MS);
        assert!(
            timer.slot.lock().unwrap().is_some(),
            "given back after the deadline"
        );

        // No deadline (an overflowing one): the work alone decides.
        let work = tokio::time::sleep(30 * MS);
        let alone = async {
            work.await;
            8
        };
        assert_eq!(timer.limit(None, alone).await, Some(8));

        // A work that spends the task's whole budget on every poll still times out.
        let greedy = std::future::poll_fn(|cx| {
            while tokio::task::coop::has_budget_remaining() {
                let _ = std::pin::pin!(tokio::task::consume_budget()).poll(cx);
            }
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        });
        let limited = timer.limit(Some(tokio::time::Instant::now() + 20 * MS), greedy);
        let outcome = tokio::time::timeout(2_000 * MS, limited).await;
        assert_eq!(outcome, Ok(None), "the deadline wins over a greedy work");
    }

    #[tokio::test]
    async fn hyper_gets_a_sleep_that_goes_back_when_dropped_and_can_be_reset() {
        let timer = ConnTimer::default();
        let mut lent = timer.sleep(30_000 * MS);
        assert!(timer.slot.lock().unwrap().is_none(), "lent out");
        let before = timer.now();
        timer.reset(&mut lent, before + 20 * MS);
        let waited = tokio::time::timeout(2_000 * MS, lent.as_mut()).await;
        assert!(waited.is_ok() && before.elapsed() >= 20 * MS);
        drop(lent);
        assert!(timer.slot.lock().unwrap().is_some(), "back in the slot");

        // Lent again after it fired: it waits the whole new time.
        let before = timer.now();
        timer.sleep(30 * MS).await;
        assert!(before.elapsed() >= 30 * MS);
        // Dropped before its deadline: back in the slot, and harmless when it passes.
        drop(timer.sleep(10 * MS));
        tokio::time::sleep(30 * MS).await;
        assert!(timer.slot.lock().unwrap().is_some());
    }
}
