//! Durable storage of the custom key set behind a small trait, so a PostgreSQL backend for
//! replicas can follow: a versioned read, a compare-and-set write, and a change notification
//! (which also reports edits made by another process).
//!
//! The file backend writes a temp file, fsyncs it, renames it over the old one and fsyncs
//! the directory, so a crash at any moment leaves the old or the new set, never a mix. It
//! polls the file's identity (inode, size, mtime) to notice edits by other processes.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::watch;

/// A boxed future, so the trait stays object-safe (`Arc<dyn KeyStore>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The stored document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredSet {
    /// Increases by one with every write through the store.
    pub version: u64,
    /// The JWKs as accepted by the management API (kid filled in), in import order.
    pub keys: Vec<Map<String, Value>>,
    /// Unix time each kid was first published.
    #[serde(default)]
    pub published_at: BTreeMap<String, i64>,
}

/// Why the store could not read or write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key store {path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("key store {path} is corrupt: {message}")]
    Corrupt { path: String, message: String },
    #[error("key store {path}: cannot write: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("key store changed concurrently (expected version {expected}, found {found})")]
    Conflict { expected: u64, found: u64 },
}

/// Storage of the custom key set.
pub trait KeyStore: Send + Sync {
    /// The current set with its version.
    fn load(&self) -> BoxFuture<'_, Result<StoredSet, StoreError>>;
    /// Writes `keys` if the stored version is still `expected`; returns the new set.
    fn compare_and_set(
        &self,
        expected: u64,
        keys: Vec<Map<String, Value>>,
        published_at: BTreeMap<String, i64>,
    ) -> BoxFuture<'_, Result<StoredSet, StoreError>>;
    /// Notified with every new set, whoever wrote it.
    fn subscribe(&self) -> watch::Receiver<Arc<StoredSet>>;
}

/// File identity used to notice external edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Stamp {
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

    fn compare_and_set(
        &self,
        expected: u64,
        keys: Vec<Map<String, Value>>,
        published_at: BTreeMap<String, i64>,
    ) -> BoxFuture<'_, Result<StoredSet, StoreError>> {
        Box::pin(async move {
            let _guard = self.write_lock.lock().await;
            let found = self.tx.borrow().version;
            if found != expected {
                return Err(StoreError::Conflict { expected, found });
            }
            let set = StoredSet {
                version: found + 1,
                keys,
                published_at,
            };
            let (path, copy) = (self.path.clone(), set.clone());
            let stamp = tokio::task::spawn_blocking(move || write_atomic(&path, &copy))
                .await
                .map_err(|e| StoreError::Write {
                    path: self.path.display().to_string(),
                    source: std::io::Error::other(e),
                })??;
            if let Ok(mut s) = self.stamp.lock() {
                *s = stamp;
            }
            self.tx.send_replace(Arc::new(set.clone()));
            Ok(set)
        })
    }

    fn subscribe(&self) -> watch::Receiver<Arc<StoredSet>> {
        self.tx.subscribe()
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
        let key: Map<String, Value> = serde_json::from_str(r#"{"kty":"OKP","kid":"a"}"#).unwrap();
        let written = store
            .compare_and_set(0, vec![key.clone()], BTreeMap::from([("a".into(), 5)]))
            .await
            .unwrap();
        assert_eq!(written.version, 1);
        assert!(matches!(
            store.compare_and_set(0, vec![], BTreeMap::new()).await,
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
        std::fs::write(&path, b"{ broken").unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            store.load().await.unwrap().version,
            7,
            "a broken edit keeps the last good set"
        );
    }
}
