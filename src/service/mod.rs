//! The running service, wired together: [`start`] opens the key store and builds the state
//! ([`crate::app::AppState`]) from a validated config, binds the public and admin listeners
//! (TLS when configured), starts the IdP key client and the store's followers, and serves the
//! public listener through [`crate::router`] (one accept loop per per-core worker, each with
//! its own upstream pools) and the admin listener through [`crate::admin`]. [`Running`] is the
//! handle: bound addresses, state, certificates for reload, shutdown.
//!
//! The one place that knows every part; nothing but the command line (and tests) imports it.

pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::app::AppState;
use crate::cache::LastToken;
use crate::config::{Config, ServerSettings};
use crate::http::body::Body;
use crate::http::client::Upstreams;
use crate::http::conn_info::ConnInfo;
use crate::http::listen;
use crate::http::server::{AcceptLoop, Handler, Limits};
use crate::http::tls::{self, CertResolver, TlsError, TlsFiles};
use crate::http::workers::{self, Scheduler};

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
    #[error("cannot connect the signing keys:\n  - {}", .0.join("\n  - "))]
    Signers(Vec<String>),
    #[error("managed signing keys: {0}")]
    Managed(String),
    #[error("cannot start the worker threads: {0}")]
    Workers(std::io::Error),
    #[error("TLS for the {listener} listener: {source}")]
    Tls {
        listener: &'static str,
        source: TlsError,
    },
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

/// Which listener a request came in on: the public one (routes, the JWKS, well-known paths)
/// or the admin one (management APIs, health, status, metrics).
#[derive(Clone, Copy)]
enum Listener {
    Public,
    Admin,
}

/// The handler of both listeners: the state and which listener it serves.
#[derive(Clone)]
struct Serve(Arc<AppState>, Listener);

impl Handler for Serve {
    /// The public listener's connections remember their last token (unused on the admin's).
    type Conn = LastToken;

    fn handle(
        &self,
        request: Request<Incoming>,
        conn: Arc<ConnInfo<LastToken>>,
    ) -> impl std::future::Future<Output = Response<Body>> + Send + 'static + use<> {
        match self.1 {
            Listener::Public => Served::Public {
                future: crate::router::public(self.0.clone(), request, conn),
            },
            // Boxed: the management API's future is large, and every proxied request's
            // future would otherwise be as large (and moved, #16).
            Listener::Admin => {
                let state = self.0.clone();
                Served::Admin {
                    future: Box::pin(async move { crate::admin::handle(&state, request).await }),
                }
            }
        }
    }
}

/// The admin listener's (boxed) future.
type AdminFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>>;

pin_project_lite::pin_project! {
    /// [`Serve::handle`]'s future: the public listener's as it is, the admin's boxed. Not an
    /// `async` block, which would hold the request and its Arcs beside the future it awaits.
    #[project = ServedProj]
    enum Served<P> {
        Public { #[pin] future: P },
        Admin { future: AdminFuture },
    }
}

impl<P: std::future::Future<Output = Response<Body>>> std::future::Future for Served<P> {
    type Output = Response<Body>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Response<Body>> {
        match self.project() {
            ServedProj::Public { future } => future.poll(cx),
            ServedProj::Admin { future } => future.as_mut().poll(cx),
        }
    }
}

/// The listener limits of `[server]`.
fn limits(settings: &ServerSettings) -> Limits {
    Limits {
        header_read_timeout: settings.header_read_timeout,
        max_header_bytes: settings.max_header_bytes,
        max_headers: settings.max_headers,
        body_read_timeout: settings.body_read_timeout,
        max_connections: settings.max_connections,
        drain_timeout: settings.drain_timeout,
    }
}

/// Binds both listeners, starts the IdP key client and serves until [`Running::shutdown`].
pub async fn start(mut config: Config) -> Result<Running, ServerError> {
    // The signing keys' backends first (a PKCS#11 module, a KMS): nothing is bound or
    // opened for a config whose keys cannot sign.
    let keys =
        crate::keys::signer::connect_all(&config.signing.specs).map_err(ServerError::Signers)?;
    config.signing.attach(keys);
    // The custody of managed keys too: a missing or wrong KEK, or a token that cannot be
    // opened, stops the start here, before anything is bound.
    let custody = match &config.signing.managed {
        Some(spec) => Some(Arc::new(
            crate::keys::managed::custody::Custody::open(spec)
                .map_err(|err| ServerError::Managed(err.to_string()))?,
        )),
        None => None,
    };
    let backlog = config.server.listen_backlog;
    let bind = |name: &str, addr: SocketAddr| {
        listen::bind(name, addr, backlog).map_err(|source| ServerError::Bind { addr, source })
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
    let public = bind("server", config.server.listen)?;
    let admin = bind("admin", config.admin_listen)?;
    let public_addr = public.local_addr().map_err(|source| ServerError::Bind {
        addr: config.server.listen,
        source,
    })?;
    let admin_addr = admin.local_addr().map_err(|source| ServerError::Bind {
        addr: config.admin_listen,
        source,
    })?;
    let settings = config.server.clone();
    let opened = store::open(&config.keys).await?;
    let store = opened.store.clone();
    let stored = store.load().await?;
    let custom = crate::app::custom_set(&stored, &Default::default()).map_err(|err| {
        ServerError::InvalidStore {
            path: config.keys.store.to_string(),
            message: err.message,
        }
    })?;
    let state = AppState::new(config, store.clone(), custom, admin_addr);
    state.set_listeners(crate::app::Listeners {
        public: public_addr,
        public_tls: public_tls.is_some(),
        admin: admin_addr,
        admin_tls: admin_tls.is_some(),
    });
    let mut managed_tasks = Vec::new();
    if let Some(custody) = custody {
        state.set_custody(custody);
        // Keys the store holds are connected now (a wrong KEK fails the start); with none
        // yet, the first current and next keys are created (one replica wins).
        if store.has_set() {
            state
                .sync_managed(&stored.signing)
                .await
                .map_err(|err| ServerError::Managed(err.to_string()))?;
        }
        managed_tasks.push(tokio::spawn(state.clone().follow_managed()));
        managed_tasks.push(tokio::spawn(state.clone().rotate_on_schedule()));
    }
    let idp_task = tokio::spawn(state.idps.clone().run());
    let mut store_tasks = vec![tokio::spawn(state.clone().follow_store())];
    store_tasks.extend(managed_tasks);
    store_tasks.extend(opened.watcher.map(tokio::spawn));
    let (shutdown, rx) = watch::channel(None);
    let certs = [&public_tls, &admin_tls]
        .into_iter()
        .flatten()
        .map(|(resolver, _)| resolver.clone())
        .collect();
    let acceptor = |tls: Option<(Arc<CertResolver>, TlsAcceptor)>| tls.map(|(_, a)| a);
    let public_loop = AcceptLoop::new(
        Serve(state.clone(), Listener::Public),
        acceptor(public_tls),
        limits(&settings),
    );
    let mut tasks = match settings.scheduler {
        Scheduler::WorkStealing => vec![tokio::spawn(public_loop.run(public, rx.clone()))],
        Scheduler::PerCore => {
            let rx = rx.clone();
            let upstream = state.config().upstream.clone();
            workers::spawn_per_core(public, settings.workers, move |listener| {
                let worker = public_loop.clone().with_upstreams(Arc::new(Upstreams::new(
                    upstream.connect_timeout,
                    upstream.pool_idle_timeout,
                )));
                worker.run(listener, rx.clone())
            })
            .map_err(ServerError::Workers)?
        }
    };
    let admin_loop = AcceptLoop::new(
        Serve(state.clone(), Listener::Admin),
        acceptor(admin_tls),
        limits(&settings),
    );
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
    /// Waits until every IdP's keys are loaded, up to `timeout`. Returns whether they are.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.state.idps.all_usable() {
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
