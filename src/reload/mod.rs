//! Hot reload of the config file, the signing key files it names and the listeners' TLS
//! certificates: on SIGHUP, always; from the file watcher (notify on their directories,
//! debounced 200 ms), only after an event that can change content (see [`triggers`])
//! and only when some watched file's SHA-256 differs from what the last reload read, so reading
//! a file (even the reloader's own reads) never reloads, an invalid file is tried once, and a
//! file that is gone waits until it is back. The complete new config is built and validated
//! first, then swapped in (arc-swap); on any error the running config stays and every problem
//! is logged with its file and line. Requests in flight keep the snapshot they started with,
//! so a reload never fails one. Listener addresses, the key store and cache bounds cannot
//! change live: the log says so and the old values stay.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

pub mod triggers;

use crate::app::AppState;
pub use crate::app::ReloadStatus;
use crate::config::{Config, load_config};
use triggers::{Snapshot, can_change_content};

/// A reload step run after the config swap (TLS certificates, for instance); an error keeps
/// that part's old state and is reported like a config problem.
pub type ReloadHook = Box<dyn Fn(&Config) -> Result<(), String> + Send + Sync>;

/// Reloads one config file into one running proxy.
pub struct Reloader {
    path: PathBuf,
    state: Arc<AppState>,
    /// Serializes reloads (file watcher and SIGHUP may fire together).
    lock: Mutex<()>,
    hooks: Mutex<Vec<ReloadHook>>,
    /// Files watched besides the config and signing keys (TLS certificates and keys).
    extra_files: Mutex<Vec<PathBuf>>,
    /// What the watched files held when the last reload (or the watch) read them.
    applied: Mutex<Snapshot>,
}

impl Reloader {
    pub fn new(path: &Path, state: Arc<AppState>) -> Arc<Self> {
        Arc::new(Reloader {
            path: path.to_path_buf(),
            state,
            lock: Mutex::new(()),
            hooks: Mutex::new(Vec::new()),
            extra_files: Mutex::new(Vec::new()),
            applied: Mutex::new(Snapshot::default()),
        })
    }

    /// Adds a step run after every successful config swap.
    pub fn add_hook(&self, hook: ReloadHook) {
        if let Ok(mut hooks) = self.hooks.lock() {
            hooks.push(hook);
        }
    }

    /// Reloads a listener's certificate with every reload and watches its files; a bad new
    /// certificate keeps the old one and fails the reload with the reason.
    pub fn add_cert_resolver(&self, resolver: Arc<crate::http::tls::CertResolver>) {
        if let Ok(mut files) = self.extra_files.lock() {
            files.extend(
                resolver
                    .watched_files()
                    .iter()
                    .map(|path| path.to_path_buf()),
            );
        }
        self.add_hook(Box::new(move |_| {
            resolver
                .reload()
                .map_err(|err| format!("TLS certificate: {err}"))
        }));
    }

    pub fn status(&self) -> ReloadStatus {
        self.state.reload_status()
    }

    /// Starts watching the files and reloading on each signal `hangups` delivers (SIGHUP,
    /// registered by the caller before the listeners opened, so a HUP sent as soon as the
    /// process answers is a reload, never the default action that ends the process); the
    /// handles end with the process or when aborted.
    pub fn spawn(self: &Arc<Self>, hangups: Hangups) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = vec![tokio::spawn(self.clone().watch(Duration::from_millis(200)))];
        #[cfg(unix)]
        if let Some(hangups) = hangups.0 {
            tasks.push(tokio::spawn(self.clone().on_sighup(hangups)));
        }
        #[cfg(not(unix))]
        let _ = hangups;
        tasks
    }

    /// Builds and validates the new config, then swaps it in; on failure keeps the running
    /// one. Returns the new generation or every problem found. Runs whatever the files hold
    /// (SIGHUP); the watcher reloads only when their content changed.
    pub fn reload(&self, trigger: &str) -> Result<u64, Vec<String>> {
        let _serial = self.serial();
        self.reload_now(trigger, Snapshot::take(&self.watched_files()))
    }

    /// Reloads for the watcher when a watched file's content differs from what the last reload
    /// read and none is missing; `None` when nothing was done.
    fn reload_if_changed(&self) -> Option<Result<u64, Vec<String>>> {
        let _serial = self.serial();
        let seen = Snapshot::take(&self.watched_files());
        let missing = seen.missing();
        if !missing.is_empty() {
            for file in missing {
                tracing::warn!(file = %file.display(), "watched file is gone; the running config stays and reloads when it is back");
            }
            return None;
        }
        if self.applied.lock().is_ok_and(|applied| *applied == seen) {
            tracing::debug!("watched files unchanged; no reload");
            return None;
        }
        Some(self.reload_now("file change", seen))
    }

    fn serial(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One reload attempt; `seen` is what the watched files held just before it read them.
    fn reload_now(&self, trigger: &str, seen: Snapshot) -> Result<u64, Vec<String>> {
        let mut status = self.state.reload_status();
        status.at = crate::jose::time::now_unix();
        status.trigger = trigger.to_string();
        let result = load_config(&self.path)
            .map_err(|err| err.problems())
            .and_then(|new| self.install(new));
        match &result {
            Ok((generation, needs_restart)) => {
                status.generation = *generation;
                status.ok = true;
                status.errors.clear();
                status.needs_restart = needs_restart.clone();
                status.succeeded += 1;
                tracing::info!(generation, trigger, file = %self.path.display(), "config reloaded");
            }
            Err(problems) => {
                status.ok = false;
                status.errors = problems.clone();
                status.failed += 1;
                for problem in problems {
                    tracing::error!(file = %self.path.display(), trigger, "reload refused; the affected part keeps its running state: {problem}");
                }
            }
        }
        self.state.metrics.record_reload(result.is_ok());
        self.state.set_reload_status(status);
        // Tried, not only applied: an invalid file is not retried until it changes again.
        self.record_applied(seen);
        result.map(|(generation, _)| generation)
    }

    fn install(&self, mut new: Config) -> Result<(u64, Vec<String>), Vec<String>> {
        // The new signing keys are connected (and their public halves read from their
        // backends) before anything is swapped: a key that cannot be reached keeps the
        // running config, and its connected keys, in place. A backend key whose spec, secret
        // and CA did not change is kept connected as it is.
        let current = self.state.config();
        let keys = crate::keys::signer::reconnect_all(
            &new.signing.specs,
            &current.signing.specs,
            &current.signing.keys,
        )?;
        new.signing.attach(keys);
        let mut needs_restart = Vec::new();
        if new.server.listen != current.server.listen {
            needs_restart.push(format!(
                "server.listen ({} stays until a restart)",
                current.server.listen
            ));
            new.server.listen = current.server.listen;
        }
        if new.admin_listen != current.admin_listen {
            needs_restart.push(format!(
                "admin.listen ({} stays until a restart)",
                current.admin_listen
            ));
            new.admin_listen = current.admin_listen;
        }
        if (&new.keys.store, &new.keys.cache) != (&current.keys.store, &current.keys.cache) {
            needs_restart.push(format!(
                "keys.store ({} stays until a restart)",
                current.keys.store
            ));
            new.keys = current.keys.clone();
        }
        if (new.server.scheduler, new.server.workers)
            != (current.server.scheduler, current.server.workers)
        {
            needs_restart.push(format!(
                "server.scheduler/workers ({} with {} stays until a restart)",
                current.server.scheduler.as_str(),
                current.server.workers
            ));
            new.server.scheduler = current.server.scheduler;
            new.server.workers = current.server.workers;
        }
        let custody = |config: &crate::config::Config| {
            config
                .signing
                .managed
                .as_ref()
                .map(|spec| spec.custody.clone())
        };
        if custody(&new) != custody(&current) {
            // The custody (KEK, token) is opened once at start: the running one stays, and so
            // does managed mode itself (on or off).
            needs_restart.push("signing.managed custody (kek_file, kek_env, pkcs11) or turning managed keys on or off".into());
            if new.signing.managed.is_some() != current.signing.managed.is_some() {
                return Err(vec![
                    "signing: switching between [[signing.keys]] and [signing.managed] needs a restart; the running signing keys stay"
                        .into(),
                ]);
            }
            if let (Some(spec), Some(running)) =
                (&mut new.signing.managed, &current.signing.managed)
            {
                spec.custody = running.custody.clone();
            }
        }
        if (new.cache.max_bytes, new.cache.max_entries)
            != (current.cache.max_bytes, current.cache.max_entries)
        {
            needs_restart.push("cache limits".into());
        }
        for setting in &needs_restart {
            tracing::warn!("{setting}: this setting cannot change while running");
        }
        let generation = self.state.install_config(new);
        let config = self.state.config();
        let mut failures = Vec::new();
        if let Ok(hooks) = self.hooks.lock() {
            for hook in hooks.iter() {
                if let Err(problem) = hook(&config) {
                    failures.push(problem);
                }
            }
        }
        if failures.is_empty() {
            Ok((generation, needs_restart))
        } else {
            Err(failures)
        }
    }

    /// Remembers `seen`, extended to files the running config now names.
    fn record_applied(&self, seen: Snapshot) {
        let covered = seen.covering(&self.watched_files());
        if let Ok(mut applied) = self.applied.lock() {
            *applied = covered;
        }
    }

    /// The files whose change triggers a reload: the config file, the signing keys and the
    /// listeners' TLS files.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let config = self.state.config();
        let mut files = vec![self.path.clone()];
        files.extend(config.watched_files());
        if let Ok(extra) = self.extra_files.lock() {
            files.extend(extra.iter().cloned());
        }
        files
    }

    /// Watches the config and key files (their directories, so editors' atomic renames and
    /// Kubernetes' symlink swaps are seen) and, after events that can change content settle
    /// for `debounce`, reloads if a file's content changed. The watch is registered and the
    /// files' digests taken before this returns; the returned future runs the loop.
    pub fn watch(
        self: Arc<Self>,
        debounce: Duration,
    ) -> impl std::future::Future<Output = ()> + Send {
        if let Ok(mut applied) = self.applied.lock() {
            *applied = std::mem::take(&mut *applied).covering(&self.watched_files());
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && can_change_content(&event.kind)
            {
                let _ = tx.send(event.paths);
            }
        });
        let mut watcher = match watcher {
            Ok(watcher) => Some(watcher),
            Err(err) => {
                tracing::error!(error = %err, "cannot watch the config files; reload with SIGHUP");
                None
            }
        };
        let mut dirs = match watcher.as_mut() {
            Some(watcher) => self.watch_dirs(watcher, Vec::new()),
            None => Vec::new(),
        };
        async move {
            let Some(mut watcher) = watcher else { return };
            while let Some(paths) = rx.recv().await {
                if !self.touches_watched(&paths) {
                    continue;
                }
                // Let a burst of writes (editor save, `cp`, a rename) settle before reading.
                loop {
                    match tokio::time::timeout(debounce, rx.recv()).await {
                        Ok(Some(_)) => continue,
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                if self
                    .off_worker(Reloader::reload_if_changed)
                    .await
                    .flatten()
                    .is_some()
                {
                    dirs = self.watch_dirs(&mut watcher, dirs);
                }
            }
        }
    }

    /// Runs `job` (a reload) on tokio's blocking pool: a reload reads files and connects the
    /// signing backends (a PKCS#11 module, a KMS over the network, up to its timeout), and
    /// none of that may hold an async worker that serves requests. `None` if it panicked.
    async fn off_worker<T: Send + 'static>(
        self: &Arc<Self>,
        job: impl FnOnce(&Reloader) -> T + Send + 'static,
    ) -> Option<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || job(&this)).await.ok()
    }

    fn touches_watched(&self, paths: &[PathBuf]) -> bool {
        let names: Vec<_> = self
            .watched_files()
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_owned()))
            .collect();
        // Kubernetes ConfigMaps swap a `..data` symlink: any change in the directory counts.
        paths.iter().any(|path| {
            path.file_name().is_some_and(|name| {
                names.iter().any(|n| n == name) || name.to_string_lossy().starts_with("..")
            })
        })
    }

    fn watch_dirs(
        &self,
        watcher: &mut notify::RecommendedWatcher,
        current: Vec<PathBuf>,
    ) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .watched_files()
            .iter()
            .map(|file| {
                file.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_path_buf()
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        for dir in &dirs {
            if !current.contains(dir)
                && let Err(err) = watcher.watch(dir, RecursiveMode::NonRecursive)
            {
                tracing::warn!(dir = %dir.display(), error = %err, "cannot watch directory");
            }
        }
        for old in current.iter().filter(|d| !dirs.contains(d)) {
            let _ = watcher.unwatch(old);
        }
        dirs
    }

    /// Reloads on every SIGHUP until the process ends.
    #[cfg(unix)]
    async fn on_sighup(self: Arc<Self>, mut hangups: tokio::signal::unix::Signal) {
        while hangups.recv().await.is_some() {
            let _ = self.off_worker(|this| this.reload("SIGHUP")).await;
        }
    }
}

/// SIGHUP, caught from the moment [`Hangups::register`] runs (inside the runtime). Register it
/// before the listeners open: from then on a HUP is queued for the reloader instead of ending
/// the process.
pub struct Hangups(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

impl Hangups {
    pub fn register() -> Hangups {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::hangup()) {
                Ok(hangups) => Hangups(Some(hangups)),
                Err(err) => {
                    tracing::error!(error = %err, "cannot listen for SIGHUP; reload by editing the files");
                    Hangups(None)
                }
            }
        }
        #[cfg(not(unix))]
        Hangups()
    }
}
