//! A throwaway PostgreSQL cluster for the store tests: `initdb` into a temp dir and
//! `postgres` on a free loopback port, run as the `postgres` system user when the tests run as
//! root (PostgreSQL refuses root; CI runs as root). The binaries are found under
//! `/usr/lib/postgresql/*/bin` (Debian puts them there, off PATH); a missing PostgreSQL fails
//! the test, it is never skipped (scripts/test.sh installs it). [`TestPostgres::stop`] and
//! [`TestPostgres::start_again`] take it down and up on the same data dir and port; dropping
//! it stops it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use resigner::keys::store::PgOptions;

use super::tls::TestCa;

/// The store's role and database (the password is scram-sha-256 checked over TCP).
pub const USER: &str = "resigner";
pub const PASSWORD: &str = "store-password-0123";
pub const DATABASE: &str = "resigner";

pub struct TestPostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as_postgres: bool,
    ssl: bool,
    child: Mutex<Option<Child>>,
}

impl TestPostgres {
    /// A running cluster with the store's role and database.
    pub async fn start() -> TestPostgres {
        Self::start_with(None).await
    }

    /// Like [`TestPostgres::start`] with `ssl = on` and a server certificate for `localhost`
    /// and `127.0.0.1` issued by `ca` (TCP connections may still be plain).
    pub async fn start_tls(ca: &TestCa) -> TestPostgres {
        Self::start_with(Some(ca)).await
    }

    async fn start_with(ca: Option<&TestCa>) -> TestPostgres {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("sock")).expect("socket dir");
        let run_as_postgres = is_root();
        let port = super::free_addr()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("free port");
        let pg = TestPostgres {
            port,
            dir,
            bin,
            run_as_postgres,
            ssl: ca.is_some(),
            child: Mutex::new(None),
        };
        pg.chown(pg.dir.path());
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data().display().to_string(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        if let Some(ca) = ca {
            let issued = ca.server("postgres");
            std::fs::write(pg.data().join("server.crt"), &issued.cert_pem).unwrap();
            let key = pg.data().join("server.key");
            std::fs::write(&key, &issued.key_pem).unwrap();
            std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            pg.chown(&pg.data());
        }
        pg.start_again().await;
        let admin = pg.superuser("postgres").await;
        for statement in [
            format!("CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'"),
            format!("CREATE DATABASE {DATABASE} OWNER {USER}"),
        ] {
            admin
                .batch_execute(&statement)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e:?}"));
        }
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// `postgres://resigner:PASSWORD@127.0.0.1:PORT/resigner?sslmode=disable`.
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{DATABASE}?sslmode=disable",
            self.port
        )
    }

    /// Store options for tests: short timeouts and backoff, a poll long enough that only
    /// notifications and reconnects can explain a quick convergence, no `PGPASSWORD`.
    pub fn options(&self, name: &str, cache: Option<&Path>) -> PgOptions {
        let mut options = PgOptions::new(&format!("{}&application_name={name}", self.url()));
        options.env_password = None;
        options.cache = cache.map(Path::to_path_buf);
        options.connect_timeout = Duration::from_secs(1);
        options.statement_timeout = Duration::from_secs(2);
        options.poll_interval = Duration::from_secs(120);
        options.max_backoff = Duration::from_millis(200);
        options
    }

    /// A superuser connection to the store's database over the Unix socket, for inspecting
    /// and disturbing the store.
    pub async fn admin(&self) -> tokio_postgres::Client {
        self.superuser(DATABASE).await
    }

    async fn superuser(&self, dbname: &str) -> tokio_postgres::Client {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(self.socket_dir())
            .port(self.port)
            .user("postgres")
            .dbname(dbname);
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("superuser connection to the test cluster: {e:?}"));
        tokio::spawn(connection);
        client
    }

    /// Cuts the session named `application_name` and keeps the store's role out (NOLOGIN,
    /// undone by `ALTER ROLE resigner LOGIN` on the returned client) until it is gone:
    /// connections already open stay, so a write can commit while that session is away.
    pub async fn cut_off(&self, application_name: &str) -> tokio_postgres::Client {
        let admin = self.admin().await;
        admin
            .batch_execute("ALTER ROLE resigner NOLOGIN")
            .await
            .expect("NOLOGIN");
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                &[&application_name],
            )
            .await
            .expect("terminate");
        // pg_terminate_backend only signals: wait until the backend is gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        let count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1";
        while admin
            .query_one(count, &[&application_name])
            .await
            .expect("count")
            .get::<_, i64>(0)
            > 0
        {
            assert!(
                Instant::now() < deadline,
                "{application_name} still connected"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        admin
    }

    /// Stops the server (fast shutdown: sessions are cut), keeping its data.
    pub fn stop(&self) {
        self.pg_ctl_stop("fast");
    }

    /// Starts the server (again) on the same data dir and port; waits until it accepts.
    pub async fn start_again(&self) {
        let log = std::fs::File::create(self.dir.path().join("postgres.log")).expect("log");
        let port = self.port.to_string();
        let socket = self.socket_dir().display().to_string();
        let data = self.data().display().to_string();
        let mut args = vec![
            "-D",
            &data,
            "-p",
            &port,
            "-k",
            &socket,
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "shared_buffers=16MB",
            "-c",
            "max_connections=40",
        ];
        if self.ssl {
            args.extend(["-c", "ssl=on"]);
        }
        let child = self
            .command("postgres", &args)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start postgres");
        *self.child.lock().unwrap() = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut config = tokio_postgres::Config::new();
            config
                .host_path(self.socket_dir())
                .port(self.port)
                .user("postgres")
                .dbname("postgres");
            if config.connect(tokio_postgres::NoTls).await.is_ok() {
                return;
            }
            let exited = self
                .child
                .lock()
                .unwrap()
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                panic!("postgres did not start:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    fn pg_ctl_stop(&self, mode: &str) {
        let Some(mut child) = self.child.lock().unwrap().take() else {
            return;
        };
        let data = self.data().display().to_string();
        let _ = self
            .command("pg_ctl", &["-D", &data, "-m", mode, "-w", "-s", "stop"])
            .stdout(Stdio::null())
            .status();
        let _ = child.kill();
        let _ = child.wait();
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let path = self.bin.join(program);
        let mut command = if self.run_as_postgres {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(&path);
            c
        } else {
            Command::new(&path)
        };
        command.args(args).current_dir(self.dir.path());
        command
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program, args).output().expect(program);
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn chown(&self, path: &Path) {
        if self.run_as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path)
                .status()
                .expect("chown");
            assert!(status.success(), "chown {} to postgres", path.display());
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.pg_ctl_stop("immediate");
    }
}

/// The newest `/usr/lib/postgresql/*/bin` holding `postgres` and `initdb`.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("postgres").exists() && bin.join("initdb").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): scripts/test.sh installs it with apt-get"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}
