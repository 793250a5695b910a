//! resigner: a token re-signing reverse proxy.
//!
//! A request flows `server` -> `router` -> `proxy::verify` -> `proxy::claims` -> `proxy::sign`
//! -> `proxy::forward`; the IdP key client (`idp`) feeds verification and the published JWKS
//! (`keys::key_set`). This file only declares modules and re-exports the entry points.
#![forbid(unsafe_code)]

pub mod admin;
pub mod alg;
pub mod app;
pub mod b64;
pub mod body;
pub mod certs;
pub mod check;
pub mod cli;
pub mod config;
pub mod conn_info;
pub mod demo;
pub mod http_client;
pub mod idp;
pub mod json;
pub mod keys;
pub mod keys_cli;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod request_id;
pub mod router;
pub mod server;
pub mod signing_pool;
pub mod time;
pub mod timeout_body;
pub mod tls;
pub mod token_cli;
pub mod workers;

pub use app::AppState;
pub use config::{Config, load_config};
pub use server::{Running, start};
