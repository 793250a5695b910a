//! The four loopback ports `resigner demo` takes (PORT for the proxy, then the IdP, the echo
//! upstream and the admin listener), checked before anything starts so that a busy port
//! gets a message naming it and a `--port` that is free now.

use std::net::{Ipv4Addr, TcpListener};

/// How many consecutive ports the demo takes from `--port`.
pub const SPAN: u16 = 4;

/// Why the demo's ports cannot be had.
#[derive(Debug, thiserror::Error)]
#[error(
    "port {busy} is in use (the demo takes ports {base} to {last}); {hint}",
    last = base + (SPAN - 1)
)]
pub struct PortInUse {
    pub busy: u16,
    pub base: u16,
    pub hint: String,
}

/// Checks that the ports `base..base + SPAN` can be bound on loopback now.
pub fn check(base: u16) -> Result<(), PortInUse> {
    let Some(busy) = first_busy(base) else {
        return Ok(());
    };
    let hint = match suggestion(base) {
        Some(port) => format!("try `resigner demo --port {port}`"),
        None => "choose another base port with --port".to_string(),
    };
    Err(PortInUse { busy, base, hint })
}

/// The first port of `base..base + SPAN` that is taken (`AddrInUse`); other bind errors
/// are left for the real bind to report.
fn first_busy(base: u16) -> Option<u16> {
    (0..SPAN).map(|i| base.saturating_add(i)).find(|&port| {
        matches!(
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)),
            Err(err) if err.kind() == std::io::ErrorKind::AddrInUse
        )
    })
}

/// A base port whose whole span is free: `base + 1000`, `base + 2000`, ... (modulo 65536,
/// skipping ports below 1024 or too high for a whole span), as `8080` suggests `9080`.
fn suggestion(base: u16) -> Option<u16> {
    let usable = 1024..=u32::from(u16::MAX - SPAN + 1);
    (1..=64u32)
        .map(|step| (u32::from(base) + step * 1000) % 65536)
        .filter(|port| usable.contains(port))
        .filter_map(|port| u16::try_from(port).ok())
        .find(|&port| (0..SPAN).all(|i| TcpListener::bind((Ipv4Addr::LOCALHOST, port + i)).is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_port_is_named_with_a_free_alternative() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let base = port;
        let err = check(base).unwrap_err();
        assert_eq!(err.busy, port);
        let suggested: u16 = err
            .hint
            .strip_prefix("try `resigner demo --port ")
            .and_then(|rest| rest.strip_suffix('`'))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{err}"));
        assert_ne!(suggested, base);
        assert!(first_busy(suggested).is_none(), "{err}");
        drop(taken);
    }
}
