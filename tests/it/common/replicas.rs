//! Several `resigner serve` processes on one PostgreSQL database, as replicas behind a load
//! balancer run: the same config (but their own listeners and local copy) and the same
//! signing key file, each a real child process that a test can kill (`SIGKILL`) and start
//! again. Shared by the replica tests and the convergence benchmark's checks.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::postgres::TestPostgres;
use super::serve::{ServeChild, wait_for};
use super::*;

/// One replica: its directory (config, signing key, local copy, log) and its process.
pub struct Replica {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub public: String,
    pub admin: String,
    child: Option<ServeChild>,
    starts: usize,
}

impl Replica {
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }

    pub fn public_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.public)
    }

    /// Starts the process (again) on the same config; waits for its admin listener.
    pub async fn start(&mut self) {
        self.starts += 1;
        let log = self.dir.path().join(format!("serve-{}.log", self.starts));
        self.child = Some(ServeChild::spawn(&self.config, &log, "resigner=info"));
        wait_for(&format!("{}/healthz", self.admin_url()), 200).await;
    }

    /// `kill -9` (what dropping a [`ServeChild`] does), then reaps it.
    pub fn kill(&mut self) {
        self.child = None;
    }
}

/// The database, the IdP and upstream every replica uses, and the replicas.
pub struct Cluster {
    pub pg: TestPostgres,
    pub idp: TestIdp,
    pub key: IdpKey,
    /// Kept running for the replicas' /api route.
    upstream: TestUpstream,
    /// `[keys] poll_interval` of every replica.
    poll: String,
    /// What every replica's config adds to the common one.
    customize: fn(ProxyBuilder) -> ProxyBuilder,
    /// Managed signing keys: no key file is shared or published, the replicas make theirs.
    managed: bool,
    pub replicas: Vec<Replica>,
}

impl Cluster {
    /// `n` replicas on a fresh database with `[keys] poll_interval = poll`; the first
    /// publishes the signing key, and every one is ready (its signing guard satisfied by
    /// the set it read from the database).
    pub async fn start(n: usize, poll: &str) -> Cluster {
        Self::start_with(n, poll, false, |builder| builder).await
    }

    /// `n` replicas with managed signing keys (`[signing.managed]`, the same KEK file on
    /// each), their configs changed by `customize`; every one is ready.
    pub async fn managed(
        n: usize,
        poll: &str,
        customize: fn(ProxyBuilder) -> ProxyBuilder,
    ) -> Cluster {
        Self::start_with(n, poll, true, customize).await
    }

    async fn start_with(
        n: usize,
        poll: &str,
        managed: bool,
        customize: fn(ProxyBuilder) -> ProxyBuilder,
    ) -> Cluster {
        let pg = TestPostgres::start().await;
        let key = IdpKey::rs256("idp-1");
        let idp = TestIdp::start(&[&key]).await;
        let upstream = TestUpstream::start().await;
        let mut cluster = Cluster {
            pg,
            idp,
            key,
            upstream,
            poll: poll.to_string(),
            customize,
            managed,
            replicas: Vec::new(),
        };
        for _ in 0..n {
            cluster.add_replica().await;
        }
        if let Some(child) = cluster.replicas[0].child.as_ref().filter(|_| !managed) {
            child
                .publish_signing_key(&cluster.replicas[0].admin_url())
                .await;
        }
        for replica in &cluster.replicas {
            wait_for(&format!("{}/readyz", replica.admin_url()), 200).await;
        }
        cluster
    }

    /// Starts one more replica, in a directory of its own (so with no local copy) but with
    /// the signing key of the first; waits for its admin listener (`/healthz`, not ready).
    /// Returns its index.
    pub async fn add_replica(&mut self) -> usize {
        let i = self.replicas.len();
        let url = format!("{}&application_name=replica{i}", self.pg.url());
        let mut builder = ProxyBuilder::new(&self.idp)
            .api_route(&self.upstream)
            .set("keys", "store", url)
            .set("keys", "poll_interval", &self.poll);
        if self.managed {
            builder = builder.managed(resigner::jose::alg::Alg::ES256);
        }
        let builder = (self.customize)(builder);
        let dir = tempfile::tempdir().expect("temp dir");
        let (public, admin) = (free_addr(), free_addr());
        let config = builder.write_config(dir.path(), &public, &admin);
        if let Some(first) = self.replicas.first() {
            std::fs::copy(
                first.dir.path().join("signing.pem"),
                dir.path().join("signing.pem"),
            )
            .expect("the same signing key on every replica");
        }
        let mut replica = Replica {
            dir,
            config,
            public,
            admin,
            child: None,
            starts: 0,
        };
        replica.start().await;
        self.replicas.push(replica);
        i
    }

    pub fn admins(&self) -> Vec<String> {
        self.replicas.iter().map(Replica::admin_url).collect()
    }

    /// The public JWK of the signing key every replica shares.
    pub fn signing_jwk(&self) -> Value {
        let config = resigner::load_config(&self.replicas[0].config).expect("the config loads");
        Value::Object(
            config
                .signing
                .active()
                .expect("the active key is connected")
                .public_jwk()
                .to_json(),
        )
    }

    /// The status of a re-signed request through replica `i`.
    pub async fn proxied(&self, i: usize) -> u16 {
        let token = mint(&self.key, &claims(&self.idp.issuer, AUDIENCE));
        get_bearer(&self.replicas[i].public_url("/api/x"), &token)
            .await
            .status
            .as_u16()
    }

    /// The `kid` in the header of the token replica `i` forwards for a fresh IdP token.
    pub async fn resigned_kid(&self, i: usize) -> String {
        assert_eq!(self.proxied(i).await, 200, "replica {i} re-signs");
        let token = self.upstream.last().bearer();
        let header = token.split('.').next().expect("a JWS");
        let header: Value =
            serde_json::from_slice(&resigner::jose::b64::decode(header).expect("base64url header"))
                .expect("a JSON header");
        header["kid"].as_str().expect("a kid").to_string()
    }

    /// Each replica's published JWKS: the body bytes and the ETag.
    pub async fn jwks(&self) -> Vec<(Vec<u8>, String)> {
        let mut all = Vec::new();
        for replica in &self.replicas {
            let reply = get(&replica.public_url("/.well-known/jwks.json"), &[]).await;
            let etag = reply
                .headers
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            all.push((reply.body.to_vec(), etag));
        }
        all
    }

    /// PUTs the signing key and a new key through replica `i`, waits until every replica
    /// lists them, and returns the body.
    pub async fn put_everywhere(&self, i: usize, signing: &Value) -> Value {
        let body = crate::admin_races::bodies(signing, 1).remove(0);
        let reply = crate::admin_races::put(&self.replicas[i].admin_url(), &body, None).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        self.converge(&crate::admin_races::kids_of(&body), Duration::from_secs(5))
            .await;
        body
    }

    /// Waits until every replica lists exactly `kids` in its custom set; panics after
    /// `within` naming what each replica lists.
    pub async fn converge(&self, kids: &[Value], within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let mut listed = Vec::new();
            for admin in self.admins() {
                listed.push(crate::admin_races::listed_kids(&admin).await);
            }
            if listed.iter().all(|l| l == kids) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not converged on {kids:?} after {within:?}: {listed:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
