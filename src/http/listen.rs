//! Binding a listener with the accept backlog of `[server] listen_backlog`. tokio's
//! `TcpListener::bind` listens with a backlog of 128, so a burst of connections larger than
//! that overflows the kernel's accept queue (the kernel drops them, the clients retry their
//! SYN a second later or give up), although beyond `max_connections` connections are meant
//! to wait there. This binds through `socket2` the way tokio does (`SO_REUSEADDR`,
//! non-blocking) and listens with the configured backlog, which the kernel caps at
//! `net.core.somaxconn`: a warning says so when that is lower.

use std::io;
use std::net::SocketAddr;
use std::path::Path;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

/// Where Linux keeps the cap on every listen backlog.
pub const SOMAXCONN_PATH: &str = "/proc/sys/net/core/somaxconn";

/// Binds `addr` and listens with `backlog` (see the module doc); `name` is the listener's
/// name in the warning.
pub fn bind(name: &str, addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    if let Some(cap) = kernel_cap(Path::new(SOMAXCONN_PATH), backlog) {
        tracing::warn!(
            listener = name,
            listen_backlog = backlog,
            somaxconn = cap,
            "the kernel caps the accept backlog below [server] listen_backlog; raise net.core.somaxconn"
        );
    }
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    TcpListener::from_std(socket.into())
}

/// The kernel's cap read from `path` when it is below `backlog`; `None` when it is not, or
/// the file is absent or unreadable (not Linux, a sandbox).
fn kernel_cap(path: &Path, backlog: u32) -> Option<u32> {
    let cap: u32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    (cap < backlog).then_some(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_cap_counts_only_when_lower() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("somaxconn");
        std::fs::write(&file, "128\n").unwrap();
        assert_eq!(kernel_cap(&file, 4096), Some(128));
        assert_eq!(kernel_cap(&file, 128), None);
        assert_eq!(kernel_cap(&file, 64), None);
        assert_eq!(kernel_cap(&dir.path().join("absent"), 4096), None);
        std::fs::write(&file, "not a number").unwrap();
        assert_eq!(kernel_cap(&file, 4096), None);
    }

    #[tokio::test]
    async fn a_bound_listener_accepts() {
        let listener = bind("test", "127.0.0.1:0".parse().unwrap(), 4096).unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        assert_eq!(client.unwrap().local_addr().unwrap(), accepted.unwrap().1);
    }
}
