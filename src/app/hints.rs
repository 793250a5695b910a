//! What the running state tells an operator to run: the exact `resigner keys import` command
//! that publishes the configured signing keys on this process's admin listener, named in the
//! log, `/readyz` and `/admin/status` while the active key is not published.
//!
//! May use: the standard library only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// The environment variable the key commands read the management API token from.
pub const TOKEN_ENV: &str = "RESIGNER_ADMIN_TOKEN";

/// The command that publishes the signing keys of the config at `config` (as `serve` was
/// given it, made absolute) on the admin listener bound to `admin`.
pub fn import_command(config: Option<&Path>, admin: SocketAddr, tls: bool) -> String {
    let host = match admin.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if tls { "https" } else { "http" };
    let config = config.map_or_else(
        || "CONFIG".to_string(),
        |path| {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            shell_word(&path.display().to_string())
        },
    );
    let admin = SocketAddr::new(host, admin.port());
    format!("resigner keys import --config {config} --admin {scheme}://{admin}")
}

/// `text` as one POSIX shell word: as is when it holds only safe characters, else in
/// single quotes.
fn shell_word(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_commands_name_a_reachable_admin_url_and_quote_the_path() {
        let any: SocketAddr = "0.0.0.0:9090".parse().unwrap();
        assert_eq!(
            import_command(Some(Path::new("/etc/resigner.toml")), any, false),
            "resigner keys import --config /etc/resigner.toml --admin http://127.0.0.1:9090"
        );
        let v6: SocketAddr = "[::]:9443".parse().unwrap();
        assert_eq!(
            import_command(Some(Path::new("/my conf/it's.toml")), v6, true),
            r"resigner keys import --config '/my conf/it'\''s.toml' --admin https://[::1]:9443"
        );
        let relative = import_command(Some(Path::new("config/r.toml")), any, false);
        let cwd = std::env::current_dir().unwrap();
        assert!(
            relative.contains(&cwd.join("config/r.toml").display().to_string()),
            "{relative}"
        );
        assert!(import_command(None, any, false).contains("--config CONFIG "));
    }
}
