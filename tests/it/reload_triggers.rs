//! What makes the file watcher reload (issue #10 item 1): reading a watched file (`cat`,
//! `resigner check`, a backup agent) must never reload, or the re-sign cache never hits again;
//! an editor save, an in-place write, a deletion followed by new content and a Kubernetes
//! `..data` swap each reload exactly once; `touch` and chmod do not; an invalid file is
//! refused once and its fix reloads; SIGHUP always reloads. Counts come from `/metrics`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{Method, Version};
use resigner::reload::Reloader;

use crate::common::tls::{TestCa, https_send};
use crate::common::*;
use crate::observability::sample;

/// Long enough for several 200 ms debounce periods: the old loop reloaded ~5 times a second.
const SETTLE: Duration = Duration::from_millis(1200);

/// A proxy serving HTTPS from certificate files in their own directory, with a file watcher.
struct Watched {
    fixture: Fixture,
    reloader: Arc<Reloader>,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
    ca: TestCa,
    cert: PathBuf,
    cert_key: PathBuf,
    token: String,
    _certs: tempfile::TempDir,
}

impl Watched {
    async fn start() -> Watched {
        let ca = TestCa::new("test CA");
        let certs = tempfile::tempdir().unwrap();
        let (cert, cert_key) = ca.server("resigner").write(certs.path(), "server");
        let fixture = Fixture::builder()
            .await
            .server("tls_cert", &cert)
            .server("tls_key", &cert_key)
            .start()
            .await;
        let (reloader, tasks) = fixture.proxy.watch();
        let token = fixture.token();
        Watched {
            fixture,
            reloader,
            _tasks: tasks,
            ca,
            cert,
            cert_key,
            token,
            _certs: certs,
        }
    }

    /// Every file the reloader watches: config, signing key, TLS certificate and TLS key.
    fn files(&self) -> [PathBuf; 4] {
        [
            self.fixture.proxy.config_path.clone(),
            self.fixture.proxy.dir.path().join("signing.pem"),
            self.cert.clone(),
            self.cert_key.clone(),
        ]
    }

    /// One proxied request over HTTPS with the test token; asserts it is served.
    async fn request(&self) {
        let port = self.fixture.proxy.running.public_addr.port();
        let url = format!("https://localhost:{port}/api/orders");
        let auth = format!("Bearer {}", self.token);
        let client = self.ca.client_config(None);
        let reply = https_send(
            client,
            Version::HTTP_11,
            Method::GET,
            &url,
            &[("authorization", &auth)],
            b"",
        )
        .await
        .unwrap();
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }

    /// `resigner_config_reloads_total` and cache hits from the admin listener's `/metrics`.
    async fn scrape(&self) -> ([f64; 2], f64) {
        let reply = get(&self.fixture.proxy.admin_url("/metrics"), &[]).await;
        let text = String::from_utf8(reply.body.to_vec()).unwrap();
        let reloads = |result| {
            sample(
                &text,
                "resigner_config_reloads_total",
                &[("result", result)],
            )
            .unwrap()
        };
        let hits = "resigner_resign_cache_lookups_total";
        let hits = sample(&text, hits, &[("result", "hit")]).unwrap();
        ([reloads("ok"), reloads("failed")], hits)
    }

    /// Waits until `ok` reloads succeeded and `failed` were refused, then several debounce
    /// periods more, and asserts no further reload came (status and `/metrics` agree).
    async fn expect_reloads(&self, ok: u64, failed: u64, what: &str) {
        for _ in 0..250 {
            let status = self.reloader.status();
            if (status.succeeded, status.failed) >= (ok, failed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(SETTLE).await;
        let status = self.reloader.status();
        assert_eq!((status.succeeded, status.failed), (ok, failed), "{what}");
        let (reloads, _) = self.scrape().await;
        assert_eq!(reloads, [ok as f64, failed as f64], "{what}: /metrics");
    }
}

/// `cat FILE`: open, read to the end, close.
fn cat(path: &Path) {
    let mut text = Vec::new();
    std::fs::File::open(path)
        .unwrap()
        .read_to_end(&mut text)
        .unwrap();
    assert!(!text.is_empty(), "{}", path.display());
}

/// An editor's save: the new text goes to a temp file in the same directory, renamed over.
fn editor_save(path: &Path, text: &str) {
    let temp = path.with_extension("toml.swp");
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

fn edited(proxy: &TestProxy, edit: u32) -> String {
    let text = std::fs::read_to_string(&proxy.config_path).unwrap();
    format!("{text}\n# edit {edit}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_watched_files_never_reloads_and_the_cache_keeps_hitting() {
    let watched = Watched::start().await;
    watched.request().await;
    let generation = watched.fixture.proxy.running.state.config().generation;
    const ROUNDS: u32 = 10;
    for _ in 0..ROUNDS {
        for file in watched.files() {
            cat(&file);
        }
        // What `resigner check` does: load the config, its key files and TLS files.
        resigner::load_config(&watched.fixture.proxy.config_path).unwrap();
        watched.request().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watched.expect_reloads(0, 0, "reads only").await;
    watched.request().await;
    let (_, hits) = watched.scrape().await;
    assert_eq!(hits, f64::from(ROUNDS + 1), "every repeated request hit");
    assert_eq!(watched.fixture.proxy.counter(|m| &m.signatures), 1);
    assert_eq!(
        watched.fixture.proxy.running.state.config().generation,
        generation
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_save_and_an_in_place_write_each_reload_once() {
    let watched = Watched::start().await;
    watched.request().await;
    let config = &watched.fixture.proxy.config_path;
    editor_save(config, &edited(&watched.fixture.proxy, 1));
    watched.expect_reloads(1, 0, "editor save").await;

    // In place (truncate, then two writes 50 ms apart): one reload after the writes settle.
    let text = edited(&watched.fixture.proxy, 2);
    let (head, tail) = text.split_at(text.len() / 2);
    let mut file = std::fs::File::options()
        .write(true)
        .truncate(true)
        .open(config)
        .unwrap();
    file.write_all(head.as_bytes()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    file.write_all(tail.as_bytes()).unwrap();
    drop(file);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(watched.reloader.status().succeeded, 1, "still debouncing");
    watched.expect_reloads(2, 0, "in-place write").await;
    assert!(
        watched.reloader.status().ok,
        "{:?}",
        watched.reloader.status()
    );

    // The new generation misses once, then hits again.
    watched.request().await;
    watched.request().await;
    let (_, hits) = watched.scrape().await;
    assert_eq!(hits, 1.0);
    assert_eq!(watched.fixture.proxy.counter(|m| &m.signatures), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touch_and_chmod_do_not_reload() {
    let watched = Watched::start().await;
    let later = SystemTime::now() + Duration::from_secs(60);
    for file in watched.files() {
        // GNU touch opens the file for writing and sets its times: a close-after-write
        // event with unchanged content.
        let handle = std::fs::File::options().write(true).open(&file).unwrap();
        let times = std::fs::FileTimes::new()
            .set_accessed(later)
            .set_modified(later);
        handle.set_times(times).unwrap();
        drop(handle);
        let permissions = std::fs::metadata(&file).unwrap().permissions();
        std::fs::set_permissions(&file, permissions).unwrap();
    }
    watched.expect_reloads(0, 0, "metadata only").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_waits_and_reloads_once_when_it_returns_changed() {
    let watched = Watched::start().await;
    let config = &watched.fixture.proxy.config_path;
    let original = std::fs::read_to_string(config).unwrap();
    std::fs::remove_file(config).unwrap();
    watched.expect_reloads(0, 0, "a missing file waits").await;
    watched.request().await;
    std::fs::write(config, &original).unwrap();
    watched
        .expect_reloads(0, 0, "back with the same content")
        .await;

    std::fs::remove_file(config).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    std::fs::write(config, format!("{original}\n# recreated\n")).unwrap();
    watched.expect_reloads(1, 0, "back with new content").await;
    assert!(watched.reloader.status().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_is_refused_once_and_its_fix_reloads() {
    let watched = Watched::start().await;
    let config = &watched.fixture.proxy.config_path;
    let original = std::fs::read_to_string(config).unwrap();
    std::fs::write(config, "[server\nlisten = ").unwrap();
    watched.expect_reloads(0, 1, "invalid file").await;
    for _ in 0..5 {
        cat(config);
    }
    watched
        .expect_reloads(0, 1, "reading the invalid file")
        .await;
    watched.request().await;

    // Back to the running content: it differs from what was last tried, so it reloads.
    editor_save(config, &original);
    watched.expect_reloads(1, 1, "the fix").await;
    assert!(watched.reloader.status().ok);

    // SIGHUP reloads unchanged files, and the watcher does not follow up.
    watched.reloader.reload("SIGHUP").unwrap();
    watched.expect_reloads(2, 1, "SIGHUP").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_configmap_swap_reloads_once() {
    use std::os::unix::fs::symlink;
    let watched = Watched::start().await;
    let dir = watched.fixture.proxy.dir.path();
    let names = ["resigner.toml", "signing.pem"];
    // The kubelet's layout: NAME -> ..data/NAME, ..data -> ..v1 (a timestamped directory).
    std::fs::create_dir(dir.join("..v1")).unwrap();
    for name in names {
        std::fs::copy(dir.join(name), dir.join("..v1").join(name)).unwrap();
    }
    symlink("..v1", dir.join("..data")).unwrap();
    for name in names {
        let link = dir.join(format!("{name}.link"));
        symlink(Path::new("..data").join(name), &link).unwrap();
        std::fs::rename(&link, dir.join(name)).unwrap();
    }
    watched
        .expect_reloads(0, 0, "same content behind symlinks")
        .await;
    for _ in 0..5 {
        cat(&watched.fixture.proxy.config_path);
    }
    watched
        .expect_reloads(0, 0, "reads through the symlinks")
        .await;

    // An update: a new directory, then `..data` swapped to it with one rename.
    std::fs::create_dir(dir.join("..v2")).unwrap();
    std::fs::copy(dir.join("signing.pem"), dir.join("..v2/signing.pem")).unwrap();
    std::fs::write(
        dir.join("..v2/resigner.toml"),
        edited(&watched.fixture.proxy, 1),
    )
    .unwrap();
    symlink("..v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join("..v1")).unwrap();
    watched.expect_reloads(1, 0, "..data swap").await;
    assert!(
        watched.reloader.status().ok,
        "{:?}",
        watched.reloader.status()
    );
}
