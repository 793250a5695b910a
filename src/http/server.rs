//! Listeners: accept loops for the public and admin ports, HTTP/1.1 and HTTP/2 (hyper-util's
//! auto builder; over TLS, ALPN offers `h2` and `http/1.1`), the limits that keep one client
//! from holding the proxy, and graceful shutdown. The public listener runs one accept loop per
//! per-core worker, or one on the shared runtime (`[server] scheduler`, see
//! [`crate::http::workers`]); the admin listener always runs on the process runtime.
//!
//! Limits, per listener (each from `[server]`):
//! - `max_connections`: a semaphore taken *before* `accept`, so beyond the limit new
//!   connections wait in the kernel's accept queue (they are not refused) until one closes.
//! - `header_read_timeout`: an HTTP/1 request head (and a TLS handshake) must arrive in time,
//!   or the connection is closed without an answer (hyper's behaviour). It also closes idle
//!   keep-alive connections, since hyper starts it when it waits for the next request. hyper's
//!   timer only runs once hyper-util has told HTTP/1 from HTTP/2, which waits for bytes with
//!   no limit, so the connection task also closes a connection whose first request has not
//!   arrived in that time (a client that connects and sends nothing, or half a preface).
//! - `max_header_bytes`: hyper's HTTP/1 read buffer (`max_buf_size`) and the HTTP/2 header
//!   list size; `max_headers`: the HTTP/1 header count. Beyond either, hyper answers 431 and
//!   closes (HTTP/2: h2 answers 431 on that stream).
//! - `body_read_timeout`: carried to the proxy in [`ConnInfo`], which wraps the body it
//!   forwards (see [`crate::http::timeout_body`]).
//!
//! Shutdown stops accepting (the listening socket is closed, so new connections are
//! refused), lets in-flight requests finish for up to the drain timeout, then closes what is
//! left.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::rt::{Read, Write};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::app::AppState;
use crate::config::{Config, ServerSettings};
use crate::http::client::Upstreams;
use crate::http::conn_info::ConnInfo;
use crate::http::tls::{self, CertResolver, TlsError, TlsFiles};
use crate::http::workers::{self, Scheduler};
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
    #[error("cannot start the worker threads: {0}")]
    Workers(std::io::Error),
    #[error("TLS for the {listener} listener: {source}")]
    Tls {
        listener: &'static str,
        source: TlsError,
    },
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
    /// The listeners' certificates (public first), for reload: see [`Running::cert_resolvers`].
    certs: Vec<Arc<CertResolver>>,
    /// `Some(drain timeout)` starts the shutdown.
    shutdown: watch::Sender<Option<Duration>>,
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
    let acceptor = |listener: &'static str, files: &Option<TlsFiles>| {
        let Some(files) = files else {
            return Ok(None);
        };
        let tls_err = |source| ServerError::Tls { listener, source };
        let resolver = Arc::new(CertResolver::load(listener, files.clone()).map_err(tls_err)?);
        let config = tls::server_config(resolver.clone()).map_err(tls_err)?;
        Ok::<_, ServerError>(Some((resolver, TlsAcceptor::from(config))))
    };
    let public_tls = acceptor("server", &config.server.tls)?;
    let admin_tls = acceptor("admin", &config.admin_tls)?;
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
    let settings = config.server.clone();
    let store = FileStore::open(&config.keys.store)?;
    let stored = store.load().await?;
    let custom = crate::app::custom_set(&stored, &Default::default()).map_err(|err| {
        ServerError::InvalidStore {
            path: config.keys.store.display().to_string(),
            message: err.message,
        }
    })?;
    let poll = config.keys.poll_interval;
    let state = AppState::new(config, store.clone(), custom, admin_addr);
    state.set_listeners(crate::app::Listeners {
        public: public_addr,
        public_tls: public_tls.is_some(),
        admin: admin_addr,
        admin_tls: admin_tls.is_some(),
    });
    let idp_task = tokio::spawn(state.idp.clone().run());
    let store_tasks = [
        tokio::spawn(store.watch_file(poll)),
        tokio::spawn(state.clone().follow_store()),
    ];
    let (shutdown, rx) = watch::channel(None);
    let certs = [&public_tls, &admin_tls]
        .into_iter()
        .flatten()
        .map(|(resolver, _)| resolver.clone())
        .collect();
    let loop_for = |kind, tls: Option<(Arc<CertResolver>, TlsAcceptor)>| AcceptLoop {
        state: state.clone(),
        kind,
        tls: tls.map(|(_, acceptor)| acceptor),
        settings: settings.clone(),
        slots: Arc::new(Semaphore::new(settings.max_connections)),
        upstreams: None,
    };
    let public_loop = loop_for(Listener::Public, public_tls);
    let mut tasks = match settings.scheduler {
        Scheduler::WorkStealing => vec![tokio::spawn(public_loop.run(public, rx.clone()))],
        Scheduler::PerCore => {
            let rx = rx.clone();
            let upstream = state.config().upstream.clone();
            workers::spawn_per_core(public, settings.workers, move |listener| {
                let mut worker = public_loop.clone();
                worker.upstreams = Some(Arc::new(Upstreams::new(
                    upstream.connect_timeout,
                    upstream.pool_idle_timeout,
                )));
                worker.run(listener, rx.clone())
            })
            .map_err(ServerError::Workers)?
        }
    };
    let admin_loop = loop_for(Listener::Admin, admin_tls);
    tasks.push(tokio::spawn(admin_loop.run(admin, rx.clone())));
    tracing::info!(%public_addr, %admin_addr, public_tls = settings.tls.is_some(), scheduler = settings.scheduler.as_str(), workers = settings.workers, "resigner listening");
    let mut background = vec![idp_task];
    background.extend(store_tasks);
    Ok(Running {
        public_addr,
        admin_addr,
        state,
        certs,
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

    /// The certificates of the TLS listeners (public first, then admin; none without TLS).
    /// Call [`CertResolver::reload`] on each to pick up new files, which
    /// [`CertResolver::watched_files`] names.
    pub fn cert_resolvers(&self) -> &[Arc<CertResolver>] {
        &self.certs
    }

    /// Stops accepting (new connections are refused), lets in-flight requests finish for up
    /// to `drain`, closes the connections still open, then returns.
    pub async fn shutdown(self, drain: Duration) {
        let _ = self.shutdown.send(Some(drain));
        // One deadline for every listener task (each per-core worker is one) together.
        let deadline = tokio::time::Instant::now() + drain + workers::BLOCKING_GRACE;
        for task in self.tasks {
            let _ = tokio::time::timeout_at(deadline, task).await;
        }
        for task in self.background {
            task.abort();
        }
    }
}

/// One listener's accept loop and what it needs; per-core workers each run a clone of the
/// public one on their own copy of the socket, sharing its connection slots.
#[derive(Clone)]
struct AcceptLoop {
    state: Arc<AppState>,
    kind: Listener,
    tls: Option<TlsAcceptor>,
    settings: ServerSettings,
    /// `max_connections` for the whole listener.
    slots: Arc<Semaphore>,
    /// See [`ConnInfo::upstreams`].
    upstreams: Option<Arc<Upstreams>>,
}

impl AcceptLoop {
    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let settings = &self.settings;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(settings.header_read_timeout)
            .max_buf_size(settings.max_header_bytes)
            .max_headers(settings.max_headers);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX));
        builder
    }

    async fn run(self, listener: TcpListener, mut shutdown: watch::Receiver<Option<Duration>>) {
        let builder = Arc::new(self.builder());
        let graceful = GracefulShutdown::new();
        // Dropped when this loop ends: every connection still open then is closed.
        let (_force_close, force) = watch::channel(());
        let slots = self.slots.clone();
        let mut full_logged = false;
        loop {
            if slots.available_permits() == 0 && !full_logged {
                tracing::warn!(
                    max_connections = self.settings.max_connections,
                    "connection limit reached; new connections wait to be accepted"
                );
            }
            full_logged = slots.available_permits() == 0;
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                _ = shutdown.changed() => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => break,
            };
            let _ = stream.set_nodelay(true);
            let connection = Connection {
                state: self.state.clone(),
                kind: self.kind,
                peer,
                builder: builder.clone(),
                watcher: graceful.watcher(),
                force: force.clone(),
                info: ConnInfo {
                    tls: self.tls.is_some(),
                    body_read_timeout: self.settings.body_read_timeout,
                    upstreams: self.upstreams.clone(),
                },
                header_read_timeout: self.settings.header_read_timeout,
            };
            let tls = self.tls.clone();
            tokio::spawn(async move {
                let _permit = permit;
                connection.run(stream, tls).await;
            });
        }
        drop(listener);
        let drain = (*shutdown.borrow()).unwrap_or(self.settings.drain_timeout);
        let open = graceful.count();
        if tokio::time::timeout(drain, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(?drain, "drain timeout: closing the connections still open");
        } else if open > 0 {
            tracing::info!(connections = open, "connections drained");
        }
    }
}

/// One accepted connection, served until it ends, shutdown finishes it, or the drain timeout
/// closes it.
struct Connection {
    state: Arc<AppState>,
    kind: Listener,
    peer: SocketAddr,
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: Watcher,
    force: watch::Receiver<()>,
    info: ConnInfo,
    /// Bounds the TLS handshake and the wait for the first request.
    header_read_timeout: Duration,
}

impl Connection {
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let Some(acceptor) = tls else {
            return self.serve(TokioIo::new(stream)).await;
        };
        match tokio::time::timeout(self.header_read_timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => self.serve(TokioIo::new(stream)).await,
            Ok(Err(err)) => {
                tracing::debug!(peer = %self.peer, error = %err, "TLS handshake failed")
            }
            Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
        }
    }

    async fn serve<I>(self, io: I)
    where
        I: Read + Write + Unpin + Send + 'static,
    {
        let Connection {
            state,
            kind,
            peer,
            builder,
            watcher,
            mut force,
            info,
            header_read_timeout: first_request_timeout,
        } = self;
        let first_request = Arc::new(AtomicBool::new(false));
        let seen = first_request.clone();
        let service = service_fn(move |mut request: http::Request<Incoming>| {
            seen.store(true, Ordering::Relaxed);
            let state = state.clone();
            request.extensions_mut().insert(info.clone());
            async move {
                let response = match kind {
                    Listener::Public => crate::router::public(&state, request, peer).await,
                    Listener::Admin => crate::admin::handle(&state, request).await,
                };
                Ok::<_, Infallible>(response)
            }
        });
        let connection = builder.serve_connection(io, service);
        let no_first_request = async {
            tokio::time::sleep(first_request_timeout).await;
            if first_request.load(Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = watcher.watch(connection) => {}
            _ = no_first_request => tracing::debug!(%peer, "no request within header_read_timeout"),
            _ = force.changed() => tracing::debug!(%peer, "connection closed at the drain timeout"),
        }
    }
}
