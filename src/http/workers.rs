//! Which threads serve the public listener (`[server] scheduler` and `workers`).
//!
//! - `per_core` (the default): `workers` threads, each running a single-threaded tokio runtime
//!   that accepts from its own clone of the listening socket. A connection is served, and its
//!   upstream exchange driven (own upstream pools), by the thread that accepted it: its tasks
//!   never move between threads. Every new connection wakes each idle worker's accept and
//!   the first to take it serves it, so a busy thread takes fewer; an idle worker holds one
//!   of `max_connections`' permits while it waits in `accept`. Measured with the proxy pinned
//!   to one core (benches/README.md): 1.28× the hit rate of the work-stealing scheduler.
//! - `work_stealing`: the public listener runs on the process's multi-thread runtime with
//!   `workers` worker threads, which balances uneven connections at the cost of cross-thread
//!   wake-ups.
//!
//! Either way the admin listener, the IdP key refresh, the key store and reloading run on the
//! process runtime (an unknown-kid refetch too, though a worker asks for it); state is shared
//! through [`crate::AppState`]. RSA signatures leave the workers for the signing threads
//! ([`crate::keys::signing_pool`]).

use std::future::Future;
use std::io;
use std::net::TcpListener as StdListener;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How long a stopping worker waits for its blocking tasks (DNS lookups, a fallback RSA
/// signature) before it lets them go.
pub const BLOCKING_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// How the public listener's connections are scheduled onto threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    PerCore,
    WorkStealing,
}

impl Scheduler {
    pub fn parse(text: &str) -> Option<Scheduler> {
        match text {
            "per_core" => Some(Scheduler::PerCore),
            "work_stealing" => Some(Scheduler::WorkStealing),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheduler::PerCore => "per_core",
            Scheduler::WorkStealing => "work_stealing",
        }
    }
}

/// The number of workers when `[server] workers` is 0 or absent: one per core this process
/// may run on (its CPU affinity, so `taskset -c 0` means one).
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The runtime the process itself runs on (admin listener, background tasks and, with
/// `work_stealing`, the public listener).
pub fn process_runtime(
    scheduler: Scheduler,
    workers: usize,
) -> io::Result<tokio::runtime::Runtime> {
    match scheduler {
        // The per-core threads carry the traffic; the rest needs little.
        Scheduler::PerCore => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build(),
        Scheduler::WorkStealing => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .enable_all()
            .build(),
    }
}

/// Starts `workers` threads named `resigner-worker-N`, each with a single-threaded runtime
/// that runs `serve` on its own clone of `listener` until that future ends; the runtime is
/// then shut down, which closes the connections it still holds (its blocking tasks get
/// [`BLOCKING_GRACE`]). Each returned handle (on the caller's runtime) completes when its
/// thread is done.
pub fn spawn_per_core<F, Fut>(
    listener: TcpListener,
    workers: usize,
    serve: F,
) -> io::Result<Vec<JoinHandle<()>>>
where
    F: Fn(TcpListener) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let listener: StdListener = listener.into_std()?;
    let mut handles = Vec::with_capacity(workers);
    for index in 0..workers.max(1) {
        let own = listener.try_clone()?;
        let serve = serve.clone();
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        // The runtime is built on the new thread (a runtime must not be dropped inside the
        // caller's async context) and reports whether it could start.
        let (built, started) = std::sync::mpsc::sync_channel::<io::Result<()>>(1);
        std::thread::Builder::new()
            .name(format!("resigner-worker-{index}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => return drop(built.send(Err(err))),
                };
                let _ = built.send(Ok(()));
                runtime.block_on(async move {
                    match TcpListener::from_std(own) {
                        Ok(listener) => serve(listener).await,
                        Err(err) => tracing::error!(error = %err, "worker cannot use the listener"),
                    }
                });
                runtime.shutdown_timeout(BLOCKING_GRACE);
                let _ = done.send(());
            })?;
        started
            .recv()
            .map_err(|_| io::Error::other("worker thread ended before its runtime started"))??;
        handles.push(tokio::spawn(async move {
            let _ = finished.await;
        }));
    }
    Ok(handles)
}
