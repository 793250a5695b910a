//! Several identity providers: one [`IdpClient`] per `[[idp]]`, in config order. A token is
//! matched to its IdP by `iss` (exact match) and verified only with that IdP's keys, so a
//! key of one IdP never verifies a token claiming another. The clients draw their key
//! generations from one shared [`Generations`]; its published value is the one number the
//! re-sign cache key needs for "any IdP's keys changed" (one atomic load on a cache hit).
//!
//! The aggregated JWKS publishes every IdP's keys in config order; a kid an earlier IdP
//! already publishes is a [`Collision`]: the later key is not published, and each collision
//! is logged once when it appears (at start and on every refresh that changes a key set),
//! counted in `resigner_idp_kid_collisions` and listed in `/admin/status`.
//!
//! On reload ([`Idps::update`]) a client whose issuer stays is kept (its keys too) and takes
//! the new settings; a new issuer gets a new client, started at once; a removed one stops.
//!
//! May use: [`super`], `config`, `http::client`, `metrics`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use serde_json::{Map, Value};
use tokio::task::JoinHandle;

use super::IdpClient;
use crate::config::IdpSettings;
use crate::http::client as http_client;
use crate::metrics::Metrics;

/// Key set generations shared by every IdP client of a process.
#[derive(Debug, Default)]
pub struct Generations {
    next: AtomicU64,
    /// Counts installed changes of any IdP's key set; bumped after the store.
    published: AtomicU64,
    changed: tokio::sync::Notify,
}

impl Generations {
    /// A generation for a changed key set (unique among the IdPs sharing this).
    pub(super) fn allocate(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Called after a changed key set is installed. Whoever reads the new
    /// [`Generations::current`] also sees that key set; a reader of the old value may have
    /// verified with either set, and its cache entry is unreachable from now on.
    pub(super) fn publish(&self) {
        self.published.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    /// Changes whenever any IdP installs a changed key set.
    pub fn current(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }
}

/// A kid published by two IdPs: only `kept_by`'s key is in the aggregated JWKS.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Collision {
    pub kid: String,
    /// The earlier IdP (config order), whose key is published.
    pub kept_by: String,
    /// The later IdP, whose key with this kid is not published.
    pub dropped_from: String,
}

/// The IdP clients of a running process.
pub struct Idps {
    clients: ArcSwap<Vec<Arc<IdpClient>>>,
    generations: Arc<Generations>,
    metrics: Arc<Metrics>,
    /// The runtime [`Idps::run`] runs on; clients added by a reload start there.
    home: OnceLock<tokio::runtime::Handle>,
    /// Each running client's refresh task, by issuer.
    tasks: Mutex<HashMap<String, JoinHandle<()>>>,
    collisions: ArcSwap<Vec<Collision>>,
}

impl Idps {
    /// One client per IdP of `settings` (none started: see [`Idps::run`]).
    pub fn new(settings: &[Arc<IdpSettings>], metrics: Arc<Metrics>) -> Self {
        let generations = Arc::new(Generations::default());
        let clients = settings
            .iter()
            .map(|idp| Arc::new(client(idp, &metrics, &generations)))
            .collect();
        Idps {
            clients: ArcSwap::from_pointee(clients),
            generations,
            metrics,
            home: OnceLock::new(),
            tasks: Mutex::new(HashMap::new()),
            collisions: ArcSwap::from_pointee(Vec::new()),
        }
    }

    /// Every client, in config order.
    pub fn all(&self) -> Arc<Vec<Arc<IdpClient>>> {
        self.clients.load_full()
    }

    /// The client of the IdP whose issuer is exactly `iss`.
    pub fn for_issuer(&self, iss: &str) -> Option<Arc<IdpClient>> {
        self.clients
            .load()
            .iter()
            .find(|client| client.settings.load().issuer == iss)
            .cloned()
    }

    /// Changes whenever any IdP's key set changes (part of the re-sign cache key).
    pub fn generation(&self) -> u64 {
        self.generations.current()
    }

    /// What the aggregated JWKS's IdP part depends on: [`Idps::generation`] and which IdPs
    /// have a usable set (a set going stale leaves the JWKS without a generation change).
    pub fn jwks_source(&self) -> u64 {
        let usable = self
            .clients
            .load()
            .iter()
            .enumerate()
            .fold(0u64, |mask, (index, client)| {
                mask | (u64::from(client.is_usable()) << (index % 16))
            });
        (self.generation() << 16) | usable
    }

    /// Whether every IdP has a usable key set (readiness).
    pub fn all_usable(&self) -> bool {
        self.clients.load().iter().all(|client| client.is_usable())
    }

    /// The kids of every IdP's current keys, which custom keys may not reuse.
    pub fn kids(&self) -> HashSet<String> {
        self.clients
            .load()
            .iter()
            .filter_map(|client| client.current())
            .flat_map(|keys| keys.kids())
            .collect()
    }

    /// The IdP keys for the aggregated JWKS, in config order without colliding kids, and the
    /// collisions found.
    pub fn published(&self) -> (Vec<Map<String, Value>>, Vec<Collision>) {
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut keys = Vec::new();
        let mut collisions = Vec::new();
        for client in self.clients.load().iter() {
            let Some(current) = client.current() else {
                continue;
            };
            let name = client.name();
            for jwk in &current.public {
                match jwk.get("kid").and_then(Value::as_str) {
                    Some(kid) => match seen.get(kid) {
                        Some(owner) if *owner != name => collisions.push(Collision {
                            kid: kid.to_string(),
                            kept_by: owner.clone(),
                            dropped_from: name.clone(),
                        }),
                        Some(_) => keys.push(jwk.clone()),
                        None => {
                            seen.insert(kid.to_string(), name.clone());
                            keys.push(jwk.clone());
                        }
                    },
                    None => keys.push(jwk.clone()),
                }
            }
        }
        (keys, collisions)
    }

    /// The kid collisions as last reported.
    pub fn collisions(&self) -> Arc<Vec<Collision>> {
        self.collisions.load_full()
    }

    /// Applies a reloaded config's IdPs: same issuer, same client (new settings); new issuer,
    /// new client (started now when running); an issuer no longer configured stops. Holds
    /// the task list throughout, so it never interleaves with [`Idps::run`] starting them.
    pub fn update(&self, settings: &[Arc<IdpSettings>]) {
        let Ok(mut tasks) = self.tasks.lock() else {
            return;
        };
        let old = self.clients.load_full();
        let mut next = Vec::with_capacity(settings.len());
        for idp in settings {
            match old.iter().find(|c| c.settings.load().issuer == idp.issuer) {
                Some(existing) => {
                    existing.update_settings(idp.clone());
                    next.push(existing.clone());
                }
                None => {
                    tracing::info!(idp = %idp.name, issuer = %idp.issuer, "IdP added");
                    next.push(Arc::new(client(idp, &self.metrics, &self.generations)));
                }
            }
        }
        for gone in old
            .iter()
            .filter(|c| !next.iter().any(|n| Arc::ptr_eq(c, n)))
        {
            let settings = gone.settings();
            tracing::info!(idp = %settings.name, issuer = %settings.issuer, "IdP removed");
            if let Some(task) = tasks.remove(&settings.issuer) {
                task.abort();
            }
            super::weak::forget(&settings.name, &self.metrics);
        }
        self.clients.store(Arc::new(next));
        self.start_all(&mut tasks);
        // A removed IdP's keys leave the JWKS: re-check the collisions.
        self.generations.changed.notify_one();
    }

    /// Starts every client that has no refresh task yet, once running.
    fn start_all(&self, tasks: &mut HashMap<String, JoinHandle<()>>) {
        let Some(home) = self.home.get() else {
            return; // not running yet: `run` starts every client
        };
        for client in self.clients.load().iter() {
            let issuer = client.settings.load().issuer.clone();
            tasks
                .entry(issuer)
                .or_insert_with(|| home.spawn(client.clone().run()));
        }
    }

    /// Starts every client's refresh loop on this runtime, then reports kid collisions
    /// whenever a key set changes. Runs until aborted (which stops the clients too).
    pub async fn run(self: Arc<Self>) {
        if let Ok(mut tasks) = self.tasks.lock() {
            let _ = self.home.set(tokio::runtime::Handle::current());
            self.start_all(&mut tasks);
        }
        let _stop = StopOnDrop(self.clone());
        loop {
            self.report_collisions();
            self.generations.changed.notified().await;
        }
    }

    /// Logs each collision not reported before and updates the gauge and the status list.
    pub fn report_collisions(&self) {
        let (_, found) = self.published();
        let previous = self.collisions.load();
        for collision in found.iter().filter(|c| !previous.contains(c)) {
            tracing::warn!(
                kid = %collision.kid,
                published_from = %collision.kept_by,
                not_published_from = %collision.dropped_from,
                "two IdPs publish the same kid: only the first IdP's key is in the JWKS \
                 (tokens of each IdP are still verified with that IdP's own key)"
            );
        }
        self.metrics.set_idp_kid_collisions(found.len());
        self.collisions.store(Arc::new(found));
    }
}

/// Aborts every client task when [`Idps::run`] ends (its task aborted at shutdown).
struct StopOnDrop(Arc<Idps>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Ok(mut tasks) = self.0.tasks.lock() {
            for (_, task) in tasks.drain() {
                task.abort();
            }
        }
    }
}

fn client(
    settings: &Arc<IdpSettings>,
    metrics: &Arc<Metrics>,
    generations: &Arc<Generations>,
) -> IdpClient {
    let fetch = http_client::fetch_client(settings.fetch_timeout, settings.tls.as_deref());
    IdpClient::new(
        settings.clone(),
        fetch,
        metrics.clone(),
        generations.clone(),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::jose::alg::Alg;

    pub(crate) fn settings(name: &str, issuer: &str) -> Arc<IdpSettings> {
        Arc::new(IdpSettings {
            name: name.into(),
            issuer: issuer.into(),
            jwks_uri: None,
            algorithms: vec![Alg::RS256],
            leeway: Duration::from_secs(30),
            require_typ: None,
            refresh: Duration::from_secs(600),
            refresh_min: Duration::from_secs(60),
            refresh_max: Duration::from_secs(86_400),
            unknown_kid_cooldown: Duration::from_secs(30),
            max_stale: Duration::from_secs(86_400),
            fetch_timeout: Duration::from_secs(5),
            max_response_bytes: 1024 * 1024,
            max_keys: 100,
            tls: None,
            scope_claims: vec!["scope".into()],
            introspection: None,
        })
    }

    /// A client that was never started (no key set).
    pub(crate) fn client(issuer: &str) -> Arc<IdpClient> {
        let idps = Idps::new(&[settings("test", issuer)], Arc::new(Metrics::default()));
        idps.all()[0].clone()
    }

    fn ec_key(kid: &str) -> crate::keys::VerifyKey {
        use crate::keys::SigningKey;
        let der = SigningKey::generate_pkcs8(Alg::ES256).unwrap();
        let key = SigningKey::from_pkcs8(&der, Alg::ES256, Some(kid.into())).unwrap();
        crate::keys::VerifyKey::from_jwk(&key.public_jwk().to_json(), &[Alg::ES256])
            .unwrap()
            .unwrap()
    }

    #[test]
    fn issuers_match_exactly_and_generations_are_shared() {
        let idps = Idps::new(
            &[
                settings("a", "https://a.test/"),
                settings("b", "https://b.test/"),
            ],
            Arc::new(Metrics::default()),
        );
        assert!(idps.for_issuer("https://a.test/").is_some());
        assert!(
            idps.for_issuer("https://a.test").is_none(),
            "exact match only"
        );
        assert!(idps.for_issuer("https://A.test/").is_none());
        assert_eq!(idps.generation(), 0);
        let clients = idps.all();
        clients[0].install(vec![ec_key("k1")]);
        let after_a = idps.generation();
        assert!(after_a > 0);
        clients[1].install(vec![ec_key("k2")]);
        assert!(idps.generation() > after_a, "any IdP's change moves it");
        let before = idps.generation();
        let same = clients[1]
            .current()
            .unwrap()
            .public
            .iter()
            .map(|jwk| {
                crate::keys::VerifyKey::from_jwk(jwk, &[Alg::ES256])
                    .unwrap()
                    .unwrap()
            })
            .collect();
        clients[1].install(same);
        assert_eq!(idps.generation(), before, "an identical refresh does not");
        assert_eq!(idps.jwks_source() & 0xffff, 0b11, "both usable");
        assert!(idps.all_usable());
    }

    #[test]
    fn a_kid_two_idps_publish_is_published_once_and_reported() {
        let idps = Idps::new(
            &[
                settings("a", "https://a.test/"),
                settings("b", "https://b.test/"),
            ],
            Arc::new(Metrics::default()),
        );
        let clients = idps.all();
        clients[0].install(vec![ec_key("shared"), ec_key("a-only")]);
        clients[1].install(vec![ec_key("shared"), ec_key("b-only")]);
        let (keys, collisions) = idps.published();
        let kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(kids, ["shared", "a-only", "b-only"]);
        assert_eq!(
            collisions,
            [Collision {
                kid: "shared".into(),
                kept_by: "a".into(),
                dropped_from: "b".into(),
            }]
        );
        // The first IdP's key is the one published.
        assert_eq!(keys[0], clients[0].current().unwrap().public[0]);
        idps.report_collisions();
        assert_eq!(idps.collisions().len(), 1);
    }

    #[test]
    fn a_reload_keeps_clients_by_issuer_and_drops_removed_ones() {
        let idps = Idps::new(
            &[
                settings("a", "https://a.test/"),
                settings("b", "https://b.test/"),
            ],
            Arc::new(Metrics::default()),
        );
        let a = idps.all()[0].clone();
        a.install(vec![ec_key("k1")]);
        idps.update(&[
            settings("c", "https://c.test/"),
            settings("renamed", "https://a.test/"),
        ]);
        let now = idps.all();
        assert_eq!(now.len(), 2);
        assert!(
            Arc::ptr_eq(&now[1], &a),
            "same issuer, same client, keys kept"
        );
        assert_eq!(now[1].name(), "renamed");
        assert!(now[1].current().is_some());
        assert!(idps.for_issuer("https://b.test/").is_none());
        assert_eq!(now[0].settings().issuer, "https://c.test/");
    }
}
