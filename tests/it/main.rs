//! Integration tests: real loopback servers (an IdP serving a JWKS, an upstream that records
//! what it receives, the proxy itself) driven over HTTP. One binary; see `common` for the
//! builders.

mod common;

mod admin_races;
mod backlog;
mod cache;
mod cli;
mod cli_errors;
mod cli_ops;
mod config_problems;
mod demo;
mod dependency_failures;
mod diagnostics;
mod discovery;
mod framing;
mod hostile_keys;
mod hostile_tokens;
mod http_edge;
mod idp_keys;
mod interop;
mod keys;
mod keys_config;
mod limits;
mod observability;
mod pg_store;
mod pkcs11;
mod proxy;
mod readme;
mod rejections;
mod reload;
mod reload_triggers;
mod replicas;
mod scans;
mod sdk;
mod self_contained;
mod shutdown;
mod startup;
mod status;
mod store;
mod store_migrate;
mod tls;
mod tls_outbound;
mod transit;
mod vectors;
mod weak_keys;
