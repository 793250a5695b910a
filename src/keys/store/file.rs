//! The file backend of the key store: one JSON document.
//!
//! A write goes to a temp file, is fsynced, renamed over the old one and the directory
//! fsynced, so a crash at any moment leaves the old or the new set, never a mix. The file's
//! identity (inode, size, mtime) is polled to notice edits by other processes. The same
//! atomic write and strict read serve [`super::PgStore`]'s local copy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::{BoxFuture, Change, KeyStore, StoreError, StoreStatus, StoredSet};
use crate::keys::managed::{ManagedState, SigningChange};

/// File identity used to notice external edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Stamp {
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

/// The file backend.
pub struct FileStore {
    path: PathBuf,
    write_lock: tokio::sync::Mutex<()>,
    stamp: std::sync::Mutex<Stamp>,
    tx: watch::Sender<Arc<StoredSet>>,
    /// Unix time the set was last read from or written to the file.
    last_sync: AtomicI64,
    /// External edits noticed, and polls of the file made.
    notifications: AtomicU64,
    polls: AtomicU64,
}

impl FileStore {
    /// Opens the store at `path`. A missing file is an empty set; an unreadable or corrupt file
    /// is an error naming the file (never a silent empty set).
    pub fn open(path: &Path) -> Result<Arc<Self>, StoreError> {
        let (set, stamp) = read_file(path)?;
        remove_stale_temp_files(path);
        let (tx, _) = watch::channel(Arc::new(set));
        Ok(Arc::new(FileStore {
            path: path.to_path_buf(),
            write_lock: tokio::sync::Mutex::new(()),
            stamp: std::sync::Mutex::new(stamp),
            tx,
            last_sync: AtomicI64::new(crate::jose::time::now_unix()),
            notifications: AtomicU64::new(0),
            polls: AtomicU64::new(0),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Polls the file every `interval` and publishes edits made by other processes. Errors
    /// (a half-edited or corrupt file) are logged and the last good set stays.
    pub async fn watch_file(self: Arc<Self>, interval: Duration) {
        loop {
            tokio::time::sleep(interval).await;
            self.polls.fetch_add(1, Ordering::Relaxed);
            let current = stamp_of(&self.path);
            let changed = self.stamp.lock().map(|s| *s != current).unwrap_or(false);
            if !changed {
                continue;
            }
            let _guard = self.write_lock.lock().await;
            match read_file(&self.path) {
                Ok((set, stamp)) => {
                    if let Ok(mut s) = self.stamp.lock() {
                        *s = stamp;
                    }
                    self.notifications.fetch_add(1, Ordering::Relaxed);
                    self.last_sync
                        .store(crate::jose::time::now_unix(), Ordering::Relaxed);
                    if **self.tx.borrow() != set {
                        tracing::info!(path = %self.path.display(), version = set.version, "key store file changed on disk");
                        self.tx.send_replace(Arc::new(set));
                    }
                }
                Err(err) => {
                    if let Ok(mut s) = self.stamp.lock() {
                        *s = current;
                    }
                    tracing::error!(error = %err, "ignoring an invalid edit of the key store file; the last good set stays");
                }
            }
        }
    }
}

impl KeyStore for FileStore {
    fn load(&self) -> BoxFuture<'_, Result<StoredSet, StoreError>> {
        Box::pin(async move { Ok((**self.tx.borrow()).clone()) })
    }

    fn write(&self, expected: u64, change: Change) -> BoxFuture<'_, Result<StoredSet, StoreError>> {
        Box::pin(async move {
            let _guard = self.write_lock.lock().await;
            let found = self.tx.borrow().version;
            if found != expected {
                return Err(StoreError::Conflict { expected, found });
            }
            let set = StoredSet {
                version: found + 1,
                keys: change.keys,
                published_at: change.published_at,
                updated_at: Some(crate::jose::time::now_unix()),
                updated_by: change.by,
                signing: self.tx.borrow().signing.clone(),
            };
            self.commit(set).await
        })
    }

    fn write_signing(
        &self,
        expected: u64,
        change: SigningChange,
    ) -> BoxFuture<'_, Result<ManagedState, StoreError>> {
        Box::pin(async move {
            let _guard = self.write_lock.lock().await;
            let mut set = (**self.tx.borrow()).clone();
            let found = set.signing.version;
            if found != expected {
                return Err(StoreError::Conflict { expected, found });
            }
            set.signing = ManagedState {
                version: found + 1,
                keys: change.keys,
                updated_at: Some(crate::jose::time::now_unix()),
                updated_by: change.by,
            };
            Ok(self.commit(set).await?.signing)
        })
    }

    fn has_set(&self) -> bool {
        true
    }

    fn subscribe(&self) -> watch::Receiver<Arc<StoredSet>> {
        self.tx.subscribe()
    }

    fn status(&self) -> StoreStatus {
        StoreStatus {
            backend: "file",
            location: self.path.display().to_string(),
            version: self.tx.borrow().version,
            reachable: true,
            last_sync: Some(self.last_sync.load(Ordering::Relaxed)),
            notifications: self.notifications.load(Ordering::Relaxed),
            polls: self.polls.load(Ordering::Relaxed),
            ..StoreStatus::default()
        }
    }
}

impl FileStore {
    /// Saves `set` atomically and sends it to the subscribers; the caller holds the write lock.
    async fn commit(&self, set: StoredSet) -> Result<StoredSet, StoreError> {
        {
            let stamp = save(&self.path, &set).await?;
            if let Ok(mut s) = self.stamp.lock() {
                *s = stamp;
            }
            self.last_sync
                .store(crate::jose::time::now_unix(), Ordering::Relaxed);
            self.tx.send_replace(Arc::new(set.clone()));
            Ok(set)
        }
    }
}

/// Writes `set` to `path` atomically (off the async workers).
pub(super) async fn save(path: &Path, set: &StoredSet) -> Result<Stamp, StoreError> {
    let (owned, copy) = (path.to_path_buf(), set.clone());
    tokio::task::spawn_blocking(move || write_atomic(&owned, &copy))
        .await
        .map_err(|e| StoreError::Write {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?
}

/// The set in `path`, `None` when there is no such file; corrupt files are errors.
pub(super) fn read_set(path: &Path) -> Result<Option<StoredSet>, StoreError> {
    match std::fs::symlink_metadata(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => read_file(path).map(|(set, _)| Some(set)),
    }
}

fn write_atomic(path: &Path, set: &StoredSet) -> Result<Stamp, StoreError> {
    let shown = path.display().to_string();
    let fail = |source| StoreError::Write {
        path: shown.clone(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let bytes = serde_json::to_vec_pretty(set).map_err(|e| fail(std::io::Error::other(e)))?;
    {
        let mut file = std::fs::File::create(&temp).map_err(fail)?;
        file.write_all(&bytes).map_err(fail)?;
        file.write_all(b"\n").map_err(fail)?;
        file.sync_all().map_err(fail)?;
    }
    std::fs::rename(&temp, path).map_err(fail)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fail)?;
    Ok(stamp_of(path))
}

/// Temp files of writes interrupted by a crash (`.{name}.tmp-{pid}`): never read, only removed.
fn remove_stale_temp_files(path: &Path) {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let prefix = format!(
        ".{}.tmp-",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn stamp_of(path: &Path) -> Stamp {
    match std::fs::metadata(path) {
        Ok(meta) => Stamp {
            #[cfg(unix)]
            ino: std::os::unix::fs::MetadataExt::ino(&meta),
            #[cfg(not(unix))]
            ino: 0,
            len: meta.len(),
            modified: meta.modified().ok(),
        },
        Err(_) => Stamp::default(),
    }
}

fn read_file(path: &Path) -> Result<(StoredSet, Stamp), StoreError> {
    let shown = path.display().to_string();
    let stamp = stamp_of(path);
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok((StoredSet::default(), stamp));
        }
        Err(source) => {
            return Err(StoreError::Read {
                path: shown,
                source,
            });
        }
    };
    crate::jose::json::parse_value(&bytes).map_err(|e| StoreError::Corrupt {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let set = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
        path: shown,
        message: e.to_string(),
    })?;
    Ok((set, stamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_survive_reopen_and_versions_are_compare_and_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let store = FileStore::open(&path).unwrap();
        assert_eq!(store.load().await.unwrap(), StoredSet::default());
        let key: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"kty":"OKP","kid":"a"}"#).unwrap();
        let written = store
            .write(
                0,
                Change {
                    keys: vec![key.clone()],
                    published_at: std::collections::BTreeMap::from([("a".into(), 5)]),
                    by: Some("tester".into()),
                },
            )
            .await
            .unwrap();
        assert_eq!(written.version, 1);
        assert_eq!(written.updated_by.as_deref(), Some("tester"));
        assert!(matches!(
            store.compare_and_set(0, vec![], Default::default()).await,
            Err(StoreError::Conflict {
                expected: 0,
                found: 1
            })
        ));
        let reopened = FileStore::open(&path).unwrap();
        assert_eq!(reopened.load().await.unwrap(), written);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["keys.json"], "no temp file left behind");
    }

    #[test]
    fn corrupt_or_unreadable_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        std::fs::write(&path, b"{\"version\": 1, \"keys\": [").unwrap();
        let err = FileStore::open(&path).err().unwrap().to_string();
        assert!(
            err.contains("keys.json") && err.contains("corrupt"),
            "{err}"
        );
        std::fs::write(&path, b"{\"version\": 1, \"keys\": [], \"extra\": 1}").unwrap();
        assert!(FileStore::open(&path).is_err());
        std::fs::write(&path, b"{\"version\": 1, \"version\": 2, \"keys\": []}").unwrap();
        assert!(FileStore::open(&path).is_err(), "duplicate members");
        let err = FileStore::open(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains("cannot read"),
            "a directory is unreadable as a file: {err}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn external_edits_are_published_and_broken_edits_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let store = FileStore::open(&path).unwrap();
        let mut rx = store.subscribe();
        tokio::spawn(store.clone().watch_file(Duration::from_millis(20)));
        std::fs::write(&path, b"{\"version\": 7, \"keys\": [{\"kty\": \"EC\"}]}").unwrap();
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rx.borrow().version, 7);
        let status = store.status();
        assert_eq!((status.backend, status.version), ("file", 7));
        assert!(status.reachable && status.notifications == 1 && status.polls >= 1);
        std::fs::write(&path, b"{ broken").unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            store.load().await.unwrap().version,
            7,
            "a broken edit keeps the last good set"
        );
    }
}
