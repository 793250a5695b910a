//! Integration tests: real loopback servers (an IdP serving a JWKS, an upstream that records
//! what it receives, the proxy itself) driven over HTTP. One binary; see `common` for the
//! builders.

mod common;

mod cache;
mod cli;
mod demo;
mod idp_keys;
mod interop;
mod keys;
mod proxy;
mod rejections;
mod sdk;
mod store;
