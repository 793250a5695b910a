//! resigner: a token re-signing reverse proxy.
//!
//! A request flows `http::server` (accept, TLS, limits, per-core workers) -> `router` (route
//! by prefix, well-known paths) -> `proxy` (bearer token -> `proxy::verify` -> claims mapped ->
//! signed, through `cache`) -> `proxy::forward` -> the upstream. The IdP key client (`idp`)
//! feeds verification and the published JWKS (`keys::key_set`); the admin listener (`admin`)
//! manages the key store (`keys::store`); `token_exchange` issues the same tokens to clients
//! that ask at `POST /oauth/token` (RFC 8693). `config` is plain data: the file shape, the runtime
//! shape and the one function between them; `reload` watches the files and swaps new
//! snapshots into the running state (`app`). This file only declares modules and re-exports
//! the entry points.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod cache;
pub mod cli;
pub mod config;
pub mod discovery;
pub mod http;
pub mod idp;
pub mod jose;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod reload;
pub mod router;
pub mod service;
pub mod token_exchange;

pub use app::AppState;
pub use config::{Config, load_config};
pub use service::{Running, start};
