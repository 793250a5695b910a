//! Fuzz target `config`: arbitrary bytes (as UTF-8) as a config file, through
//! `resigner::config::parse_config` with a temporary base directory that holds the key files
//! `config/example.toml` and the seed corpus name (`../certs/signing/example.pem`,
//! `../certs/signing/example-next.pem`, `signing.pem`), so whole configs validate and the
//! checks after key loading are reached; a refused config also goes through
//! `config::lines::locate`, as `load_config` does. Besides "never panics": a config that
//! validates never lets a route `set`, `rename` into or `remove` a claim resigner owns.
//!
//! Inputs naming `/dev`, `/proc` or `/sys` are skipped: a key path like `/dev/zero` or
//! `/dev/stdin` would make the harness read forever. A config file is written by the
//! operator, who can point it at any file, so that is not a finding.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use resigner::jose::alg::Alg;
use resigner::config::{RESERVED, lines, parse_config};
use resigner::keys::{SigningKey, pem};

struct Base {
    _dir: tempfile::TempDir,
    config: PathBuf,
}

fn write_key(path: &Path) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let der = SigningKey::generate_pkcs8(Alg::ES256).expect("generate key");
    std::fs::write(path, pem::encode(&der, "PRIVATE KEY")).expect("write key");
}

static BASE: LazyLock<Base> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config");
    let signing = dir.path().join("certs").join("signing");
    write_key(&signing.join("example.pem"));
    write_key(&signing.join("example-next.pem"));
    write_key(&config.join("signing.pem"));
    Base { _dir: dir, config }
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if ["/dev", "/proc", "/sys"]
        .iter()
        .any(|dir| text.contains(dir))
    {
        return;
    }
    let config = match parse_config(text, &BASE.config) {
        Ok(config) => config,
        Err(err) => {
            // What load_config does next: find the line of each problem's field.
            for problem in err.problems() {
                let field = problem.split(": ").next().unwrap_or_default();
                let _ = lines::locate(text, field);
            }
            return;
        }
    };
    for route in &config.routes {
        let claims = &route.claims;
        for name in RESERVED {
            assert!(!claims.set.contains_key(name), "set {name} accepted");
            assert!(
                !claims
                    .rename
                    .iter()
                    .any(|(from, to)| from == name || to == name),
                "rename of {name} accepted"
            );
            assert!(
                name == "nbf" || !claims.remove.iter().any(|r| r == name),
                "remove {name} accepted"
            );
        }
    }
});
