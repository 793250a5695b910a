//! Listeners: accept loops for the public and admin ports, HTTP/1.1 and HTTP/2 (hyper-util's
//! auto builder) with a header read timeout (which only works with a timer set), and
//! graceful shutdown that stops accepting and lets in-flight requests finish.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::AppState;
use crate::config::Config;
use crate::keys::store::{FileStore, KeyStore};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] crate::keys::store::StoreError),
    #[error("key store {path} holds an invalid key set: {message}")]
    InvalidStore { path: String, message: String },
}

#[derive(Clone, Copy)]
enum Listener {
    Public,
    Admin,
}

/// A running proxy: its bound addresses, its state, and the handle to stop it.
pub struct Running {
    pub public_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// IdP refresh, key store polling and following: aborted at shutdown.
    background: Vec<JoinHandle<()>>,
}

/// Binds both listeners, starts the IdP key client and serves until [`Running::shutdown`].
pub async fn start(config: Config) -> Result<Running, ServerError> {
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })
    };
    let public = bind(config.server.listen).await?;
    let admin = bind(config.admin_listen).await?;
    let public_addr = public.local_addr().map_err(|source| ServerError::Bind {
        addr: config.server.listen,
        source,
    })?;
    let admin_addr = admin.local_addr().map_err(|source| ServerError::Bind {
        addr: config.admin_listen,
        source,
    })?;
    let header_timeout = config.server.header_read_timeout;
    let store = FileStore::open(&config.keys.store)?;
    let stored = store.load().await?;
    let custom = crate::app::custom_set(&stored, &Default::default()).map_err(|err| {
        ServerError::InvalidStore {
            path: config.keys.store.display().to_string(),
            message: err.message,
        }
    })?;
    let poll = config.keys.poll_interval;
    let state = AppState::new(config, store.clone(), custom);
    let idp_task = tokio::spawn(state.idp.clone().run());
    let store_tasks = [
        tokio::spawn(store.watch_file(poll)),
        tokio::spawn(state.clone().follow_store()),
    ];
    let (shutdown, rx) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(accept_loop(
            public,
            state.clone(),
            Listener::Public,
            header_timeout,
            rx.clone(),
        )),
        tokio::spawn(accept_loop(
            admin,
            state.clone(),
            Listener::Admin,
            header_timeout,
            rx,
        )),
    ];
    tracing::info!(%public_addr, %admin_addr, "resigner listening");
    let mut background = vec![idp_task];
    background.extend(store_tasks);
    Ok(Running {
        public_addr,
        admin_addr,
        state,
        shutdown,
        tasks,
        background,
    })
}

impl Running {
    /// Waits until the IdP keys are loaded, up to `timeout`. Returns whether they are.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.state.idp.current().is_none() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Stops accepting, lets in-flight requests finish for up to `drain`, then returns.
    pub async fn shutdown(self, drain: Duration) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(drain + Duration::from_millis(100), task).await;
        }
        for task in self.background {
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<AppState>,
    kind: Listener,
    header_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let service = service_fn(move |request| {
                    let state = state.clone();
                    async move {
                        let response = match kind {
                            Listener::Public => crate::router::public(&state, request, peer).await,
                            Listener::Admin => crate::admin::handle(&state, request).await,
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}
