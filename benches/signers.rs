//! Signatures per second and latency percentiles per signer backend (issue #13): the
//! in-memory key against a SoftHSM2 token, ES256 and RS256, side by side in one run, through
//! `SigningKey::sign_compact` (what the proxy's sign stage calls on a cache miss).
//!
//!   cargo bench --bench signers            # about 30 s; needs Debian's softhsm2
//!   SIGNATURES=5000 cargo bench --bench signers
//!
//! The bench makes its own SoftHSM2 token in a temp dir and runs itself again with
//! `SOFTHSM2_CONF` pointing there (the module reads it at initialisation). Each case: one
//! thread signing back to back (latency of every signature: p50, p99), then one thread per
//! core together (throughput, as the signing threads run in the proxy).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use resigner::jose::alg::Alg;
use resigner::keys::SigningKey;
use resigner::keys::signer::{Pkcs11Spec, SecretSource};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const CONF_ENV: &str = "SOFTHSM2_CONF";
const DIR_ENV: &str = "RESIGNER_BENCH_HSM_DIR";

fn main() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return relaunch();
    };
    let dir = std::path::PathBuf::from(dir);
    let signatures: usize = std::env::var("SIGNATURES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let payload = br#"{"iss":"https://resigner.bench/","sub":"user-42","aud":"https://api.bench","exp":4102444800,"iat":1700000000,"scope":"read:orders"}"#;
    println!("{signatures} signatures per case, {threads} thread(s) in the parallel run");
    println!(
        "{:<8} {:<7} {:>12} {:>10} {:>10} {:>14}",
        "backend", "alg", "1 thread/s", "p50 µs", "p99 µs", "all threads/s"
    );
    for alg in [Alg::ES256, Alg::RS256] {
        let der = SigningKey::generate_pkcs8(alg).expect("generate");
        let memory = SigningKey::from_pkcs8(&der, alg, Some("mem".into())).expect("key");
        let spec = Pkcs11Spec {
            module: MODULE.into(),
            token_label: "bench".into(),
            key_label: format!("bench-{}", alg.name()),
            pin: SecretSource::File(dir.join("pin")),
        };
        resigner::keys::signer::pkcs11::generate(&spec, alg).expect("generate on the token");
        let hsm = resigner::cli::keys::pkcs11::signing_key(&spec, alg, "hsm").expect("connect");
        for (name, key) in [("memory", memory), ("pkcs11", hsm)] {
            let key = Arc::new(key);
            let (rate, p50, p99) = one_thread(&key, payload, signatures);
            let parallel = all_threads(&key, payload, signatures, threads);
            println!(
                "{name:<8} {:<7} {rate:>12.0} {:>10.1} {:>10.1} {parallel:>14.0}",
                alg.name(),
                micros(p50),
                micros(p99)
            );
        }
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Signs `n` times on this thread: signatures per second, p50 and p99 latency.
fn one_thread(key: &SigningKey, payload: &[u8], n: usize) -> (f64, Duration, Duration) {
    for _ in 0..n / 10 {
        key.sign_compact(payload).expect("warm-up signature");
    }
    let mut latencies = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        key.sign_compact(payload).expect("signature");
        latencies.push(t.elapsed());
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies[n / 2], latencies[n * 99 / 100])
}

/// `threads` threads signing `n` times each together: signatures per second in all.
fn all_threads(key: &Arc<SigningKey>, payload: &[u8], n: usize, threads: usize) -> f64 {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let key = key.clone();
            scope.spawn(move || {
                for _ in 0..n {
                    key.sign_compact(payload).expect("signature");
                }
            });
        }
    });
    (n * threads) as f64 / started.elapsed().as_secs_f64()
}

/// Makes a SoftHSM2 token in a temp dir and runs this bench again with `SOFTHSM2_CONF` set.
fn relaunch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).expect("token dir");
    let conf = dir.path().join("softhsm2.conf");
    let text = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
        tokens.display()
    );
    std::fs::write(&conf, text).expect("softhsm2.conf");
    std::fs::write(dir.path().join("pin"), "1234").expect("pin");
    let init = Command::new("softhsm2-util")
        .env(CONF_ENV, &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ])
        .output()
        .expect("softhsm2-util runs (apt-get install softhsm2)");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let exe = std::env::current_exe().expect("the bench binary");
    let status = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CONF_ENV, &conf)
        .env(DIR_ENV, dir.path())
        .status()
        .expect("the bench runs again");
    std::process::exit(status.code().unwrap_or(1));
}
