//! Threads for slow signatures (RSA: ~0.35 ms each, ~40× an ES256 signature), kept off the
//! async workers and out of their way.
//!
//! A miss storm of RSA re-signing would otherwise take the cores from the workers serving
//! cache hits. Here one thread per core signs, under Linux's `SCHED_IDLE` policy: whenever a
//! worker has a request to serve, the kernel runs it at once, and signatures use the CPU the
//! workers leave idle (measured in benches/README.md: hit p99 under an RS256 miss storm within
//! 1.2× of hit p99 alone, against 2.9× with normal-priority signing).
//!
//! Idle CPU is not guaranteed: a signature still queued after [`MAX_IDLE_WAIT`] (the workers
//! have kept every core busy that long) is taken back and run at normal priority on tokio's
//! blocking pool, at most one per core at a time. So a miss waits at most about that long
//! for CPU, and signing never takes more cores than there are.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};

/// How long a signature waits for idle CPU before it runs at normal priority.
pub const MAX_IDLE_WAIT: Duration = Duration::from_millis(250);

type Job = Box<dyn FnOnce() + Send>;

/// A job and the channel for its result; whoever takes it from the slot runs it.
type Slot<T> = Arc<Mutex<Option<(Box<dyn FnOnce() -> T + Send>, oneshot::Sender<T>)>>>;

/// The signing threads and their queue. Dropping the pool ends the threads once the queued
/// jobs are done.
pub struct SigningPool {
    jobs: Mutex<Sender<Job>>,
    /// Normal-priority runs of jobs that waited [`MAX_IDLE_WAIT`]: one per core.
    escalated: Semaphore,
}

impl SigningPool {
    /// Starts `threads` threads named `resigner-sign-N`.
    pub fn new(threads: usize) -> SigningPool {
        let threads = threads.max(1);
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads {
            let queue = queue.clone();
            let started = std::thread::Builder::new()
                .name(format!("resigner-sign-{index}"))
                .spawn(move || work(&queue));
            if let Err(err) = started {
                tracing::error!(error = %err, "cannot start a signing thread");
            }
        }
        SigningPool {
            jobs: Mutex::new(jobs),
            escalated: Semaphore::new(threads),
        }
    }

    /// Runs `job` on a signing thread, or at normal priority once it has waited
    /// [`MAX_IDLE_WAIT`], and returns its result; `None` if it panicked.
    pub async fn run<T, F>(&self, job: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (done, mut result) = oneshot::channel();
        let slot: Slot<T> = Arc::new(Mutex::new(Some((Box::new(job), done))));
        let queued = slot.clone();
        let sent = self
            .jobs
            .lock()
            .ok()
            .and_then(|jobs| jobs.send(Box::new(move || run_slot(&queued))).ok());
        if sent.is_some() {
            tokio::select! {
                ran = &mut result => return ran.ok(),
                _ = tokio::time::sleep(MAX_IDLE_WAIT) => {}
            }
        }
        // Not run yet (or no signing thread): take it back unless a thread already has it.
        let taken = slot.lock().ok().and_then(|mut slot| slot.take());
        let Some((job, done)) = taken else {
            return result.await.ok(); // running on a signing thread
        };
        tracing::debug!("signature waited for idle CPU too long; running it at normal priority");
        let _permit = self.escalated.acquire().await.ok()?;
        let value = tokio::task::spawn_blocking(job).await.ok()?;
        drop(done);
        Some(value)
    }
}

fn run_slot<T>(slot: &Slot<T>) {
    let taken = slot.lock().ok().and_then(|mut slot| slot.take());
    if let Some((job, done)) = taken {
        let _ = done.send(job());
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        // The lock is held only while waiting for the next job, never while signing.
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match next {
            // A panic drops the job's result sender (the caller gets `None`) and is confined
            // to that job: the thread goes on with the next.
            Ok(job) => drop(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))),
            Err(_) => return, // the pool was dropped
        }
    }
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    let priority = thread_priority::ThreadPriority::Min;
    if let Err(err) = set_thread_priority_and_policy(thread_native_id(), priority, idle) {
        tracing::warn!(error = ?err, "cannot move the signing threads to SCHED_IDLE; they compete with the workers");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_named_threads_under_sched_idle() {
        let pool = SigningPool::new(2);
        let (name, policy) = pool
            .run(|| {
                let name = std::thread::current().name().map(str::to_owned);
                #[cfg(target_os = "linux")]
                let policy = format!("{:?}", thread_priority::unix::thread_schedule_policy());
                #[cfg(not(target_os = "linux"))]
                let policy = "Ok(Normal(Idle))".to_string();
                (name, policy)
            })
            .await
            .expect("the job ran");
        assert!(name.unwrap_or_default().starts_with("resigner-sign-"));
        assert_eq!(policy, "Ok(Normal(Idle))");
        let queued: Vec<_> = (0..20).map(|n| pool.run(move || n * 2)).collect();
        let mut results = Vec::new();
        for result in queued {
            results.push(result.await);
        }
        assert_eq!(results, (0..20).map(|n| Some(n * 2)).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_panicking_job_yields_none_and_its_thread_goes_on() {
        let pool = SigningPool::new(1);
        assert_eq!(pool.run(|| -> i32 { panic!("boom") }).await, None);
        assert_eq!(pool.run(|| 7).await, Some(7));
    }

    #[tokio::test]
    async fn a_job_starved_of_idle_cpu_runs_at_normal_priority_after_the_wait() {
        let pool = Arc::new(SigningPool::new(1));
        // Occupy the only signing thread for longer than the wait.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || hold.recv_timeout(Duration::from_secs(5)))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = std::time::Instant::now();
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .expect("the job ran");
        let waited = started.elapsed();
        assert!(waited >= MAX_IDLE_WAIT, "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        assert!(
            !name.unwrap_or_default().starts_with("resigner-sign-"),
            "ran on tokio's blocking pool, not behind the busy signing thread"
        );
        release.send(()).unwrap();
        assert!(blocker.await.unwrap().is_some());
    }
}
