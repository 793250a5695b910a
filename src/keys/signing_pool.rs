//! Threads for slow signatures (RSA: ~0.35 ms each, ~40× an ES256 signature), kept off the
//! async workers and out of their way.
//!
//! A miss storm of RSA re-signing would otherwise take the cores from the workers serving
//! cache hits. Here one thread per core signs, under Linux's `SCHED_IDLE` policy: whenever a
//! worker has a request to serve, the kernel runs it at once, and signatures use the CPU the
//! workers leave idle (benches/README.md: at a fixed hit rate, hit p99 during an RS256 miss
//! storm 0.97× hit p99 alone; hits during the storm 30.6k req/s, against 7.3k req/s when RSA
//! signing ran at normal priority).
//!
//! Idle CPU is not guaranteed: a signature still *queued* after [`MAX_IDLE_WAIT`] (the
//! workers kept every core busy that long) is taken back and run at normal priority on tokio's
//! blocking pool, at most one per core at a time (further ones wait for a turn), and counted
//! in `resigner_signing_fallbacks_total`. A signature a signing thread has already started
//! finishes there, however long the cores stay busy. A queued job whose request has gone
//! (client disconnected) is skipped, so dead requests do not take the idle CPU.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
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
    /// Normal-priority runs of jobs that waited too long: one per core.
    escalated: Semaphore,
    /// How long a queued job waits for a signing thread ([`MAX_IDLE_WAIT`]).
    max_wait: Duration,
    /// Jobs run at normal priority after waiting `max_wait`.
    fallbacks: Option<Counter>,
}

impl SigningPool {
    /// Starts `threads` threads named `resigner-sign-N`; queued jobs wait [`MAX_IDLE_WAIT`]
    /// for them, and `fallbacks` counts the ones that then run at normal priority.
    pub fn new(threads: usize, fallbacks: Option<Counter>) -> SigningPool {
        SigningPool::with_max_wait(threads, MAX_IDLE_WAIT, fallbacks)
    }

    /// As [`SigningPool::new`] with another wait (tests).
    pub fn with_max_wait(
        threads: usize,
        max_wait: Duration,
        fallbacks: Option<Counter>,
    ) -> SigningPool {
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
            max_wait,
            fallbacks,
        }
    }

    /// Runs `job` on a signing thread, or at normal priority if it is still queued after the
    /// pool's wait, and returns its result; `None` if it panicked.
    pub async fn run<T, F>(&self, job: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.run_waiting(job, self.max_wait).await
    }

    async fn run_waiting<T, F>(&self, job: F, max_wait: Duration) -> Option<T>
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
                _ = tokio::time::sleep(max_wait) => {}
            }
        }
        // Not run yet (or no signing thread): take it back unless a thread already has it.
        let taken = slot.lock().ok().and_then(|mut slot| slot.take());
        let Some((job, _unused_sender)) = taken else {
            return result.await.ok(); // running on a signing thread
        };
        tracing::debug!("signature waited for idle CPU too long; running it at normal priority");
        if let Some(fallbacks) = &self.fallbacks {
            fallbacks.inc();
        }
        let _permit = self.escalated.acquire().await.ok()?;
        tokio::task::spawn_blocking(job).await.ok()
    }
}

fn run_slot<T>(slot: &Slot<T>) {
    let taken = slot.lock().ok().and_then(|mut slot| slot.take());
    // Skipped when the caller has gone (its request was dropped while the job was queued).
    if let Some((job, done)) = taken
        && !done.is_closed()
    {
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
        // thread-priority also resets the nice value, which fails (EACCES) in a process started
        // with a raised nice value even though SCHED_IDLE itself was applied.
        tracing::warn!(error = ?err, "setting SCHED_IDLE (and nice 0) on a signing thread failed; it may compete with the workers");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long enough that a SCHED_IDLE thread starved by a busy test machine still gets the job.
    const PATIENT: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn jobs_run_on_named_threads_under_sched_idle() {
        let pool = SigningPool::with_max_wait(2, PATIENT, None);
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
        let pool = SigningPool::with_max_wait(1, PATIENT, None);
        assert_eq!(pool.run(|| -> i32 { panic!("boom") }).await, None);
        assert_eq!(pool.run(|| 7).await, Some(7));
    }

    #[tokio::test]
    async fn a_job_starved_of_idle_cpu_runs_at_normal_priority_after_the_wait() {
        let fallbacks = prometheus_client::metrics::counter::Counter::default();
        let pool = Arc::new(SigningPool::with_max_wait(
            1,
            PATIENT,
            Some(fallbacks.clone()),
        ));
        // Occupy the only signing thread (waiting as long as it takes to get there).
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (running, started_on) = std::sync::mpsc::channel::<Option<String>>();
        let blocker = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    let _ = running.send(std::thread::current().name().map(str::to_owned));
                    hold.recv_timeout(Duration::from_secs(30))
                })
                .await
            }
        });
        let on = tokio::task::spawn_blocking(move || started_on.recv_timeout(PATIENT))
            .await
            .unwrap()
            .expect("the blocker started");
        assert!(on.unwrap_or_default().starts_with("resigner-sign-"));

        let wait = Duration::from_millis(100);
        let started = std::time::Instant::now();
        let name = pool
            .run_waiting(|| std::thread::current().name().map(str::to_owned), wait)
            .await
            .expect("the job ran");
        let waited = started.elapsed();
        assert!(waited >= wait, "{waited:?}");
        assert!(
            !name.unwrap_or_default().starts_with("resigner-sign-"),
            "ran on tokio's blocking pool, not behind the busy signing thread"
        );
        assert_eq!(fallbacks.get(), 1);
        release.send(()).unwrap();
        assert!(blocker.await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_queued_job_whose_caller_has_gone_is_skipped() {
        let pool = Arc::new(SigningPool::with_max_wait(1, PATIENT, None));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || hold.recv_timeout(Duration::from_secs(30)))
                    .await
            }
        });
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let abandoned = tokio::spawn({
            let (pool, ran) = (pool.clone(), ran.clone());
            async move {
                pool.run(move || ran.store(true, std::sync::atomic::Ordering::SeqCst))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        abandoned.abort(); // the client went away while its job was queued
        let _ = abandoned.await;
        release.send(()).unwrap();
        assert!(blocker.await.unwrap().is_some());
        assert_eq!(
            pool.run(|| 1).await,
            Some(1),
            "the thread has moved past it"
        );
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }
}
