//! HTTP plumbing, inbound and outbound: the listeners (`listen` binds them with their accept
//! backlog) and connections (`server`, `workers`
//! for per-core runtimes, `conn_info` handed to each request), bodies (`body`,
//! `timeout_body`), the connection's reusable timer (`timer`), request ids (`request_id`), the outbound client with per-route TLS
//! (`client`) and TLS material (`tls`).
//! `headers` is the header vocabulary config and proxy share: hop-by-hop, transfer codings;
//! `framing` answers request-framing errors (400, then the connection closes); `form` is the
//! OAuth form encoding and Basic client credentials.

pub mod body;
pub mod bound;
pub mod client;
pub mod conn_info;
pub mod drain;
pub mod form;
pub mod framing;
pub mod headers;
pub mod listen;
pub mod request_id;
pub mod server;
pub mod timeout_body;
pub mod timer;
pub mod tls;
pub mod workers;
