//! A throwaway SoftHSM2 for the PKCS#11 tests: its own config and token directory in a temp
//! dir (`SOFTHSM2_CONF`, so nothing touches the machine's tokens), one token initialised with
//! `softhsm2-util`, key pairs generated on it by `resigner keys generate --pkcs11`, and the
//! proxy run as a child process with that environment ([`SoftHsm::serve`]). The token can be
//! taken away and put back ([`SoftHsm::remove_token`], [`SoftHsm::restore_token`]).
//! `softhsm2-util` and the module come from Debian's `softhsm2` (scripts/test.sh installs
//! it); without them the test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use resigner::jose::alg::Alg;
use serde_json::{Value, json};

use super::ProxyBuilder;
use super::serve::Serve;

/// Debian's SoftHSM2 module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of the test token.
pub const PIN: &str = "1234";

/// A SoftHSM2 configuration with one initialised token.
pub struct SoftHsm {
    dir: tempfile::TempDir,
    pub token_label: String,
}

impl SoftHsm {
    /// A new token directory with one token labelled `label` (user PIN [`PIN`]).
    pub fn start(label: &str) -> SoftHsm {
        assert!(
            Path::new(MODULE).exists(),
            "{MODULE} is missing: install Debian's softhsm2 (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("tokens")).expect("token dir");
        let conf = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            dir.path().join("tokens").display()
        );
        std::fs::write(dir.path().join("softhsm2.conf"), conf).expect("softhsm2.conf");
        std::fs::write(dir.path().join("pin"), format!("{PIN}\n")).expect("pin file");
        let hsm = SoftHsm {
            dir,
            token_label: label.to_string(),
        };
        init_token(&hsm, label);
        hsm
    }

    /// `program` with `SOFTHSM2_CONF` pointing at this token directory.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command.env("SOFTHSM2_CONF", self.dir.path().join("softhsm2.conf"));
        command
    }

    pub fn pin_file(&self) -> PathBuf {
        self.dir.path().join("pin")
    }

    /// The `--pkcs11` value for the key labelled `key_label`.
    pub fn spec(&self, key_label: &str) -> String {
        format!(
            "module={MODULE},token_label={},key_label={key_label},pin_file={}",
            self.token_label,
            self.pin_file().display()
        )
    }

    /// Runs `resigner ARGS` with this SoftHSM; returns (success, stdout, stderr).
    pub fn resigner(&self, args: &[&str]) -> (bool, String, String) {
        let output = self
            .command(env!("CARGO_BIN_EXE_resigner"))
            .args(args)
            .output()
            .expect("resigner runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// `resigner keys generate|jwks --pkcs11 ... --alg ALG --kid KID`: what it prints (the
    /// public JWK, or a JWKS), parsed.
    pub fn keys(&self, command: &str, key_label: &str, alg: Alg, kid: &str) -> Value {
        let spec = self.spec(key_label);
        let args = [
            "keys",
            command,
            "--pkcs11",
            &spec,
            "--alg",
            alg.name(),
            "--kid",
            kid,
        ];
        let (ok, stdout, stderr) = self.resigner(&args);
        assert!(ok, "keys {command} --pkcs11: {stderr}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }

    /// The `pkcs11 = {...}` table of the key labelled `key_label`.
    pub fn table(&self, key_label: &str) -> Value {
        json!({
            "module": MODULE,
            "token_label": self.token_label,
            "key_label": key_label,
            "pin_file": self.pin_file(),
        })
    }

    /// Starts `resigner serve --config CONFIG` with this SoftHSM; stderr goes to `log`.
    pub fn serve(&self, config: &Path, log: &Path) -> Serve {
        let log = std::fs::File::create(log).expect("create the log file");
        let child = self
            .command(env!("CARGO_BIN_EXE_resigner"))
            .args(["serve", "--log-format", "json", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("resigner serve starts");
        Serve(child)
    }

    fn tokens(&self) -> PathBuf {
        self.dir.path().join("tokens")
    }

    /// The same directory, addressing the token labelled `label` (see [`SoftHsm::add_token`]).
    pub fn with_token(self, label: &str) -> SoftHsm {
        SoftHsm {
            token_label: label.into(),
            ..self
        }
    }

    /// The directory holding `softhsm2.conf`, `pin` and `tokens/`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Initialises one more token labelled `label` (same PINs) in this token directory;
    /// returns its own directory under `tokens/` (SoftHSM keeps one per token).
    pub fn add_token(&self, label: &str) -> PathBuf {
        let before = token_dirs(&self.tokens());
        init_token(self, label);
        let mut added: Vec<PathBuf> = token_dirs(&self.tokens())
            .into_iter()
            .filter(|dir| !before.contains(dir))
            .collect();
        assert_eq!(added.len(), 1, "one new token directory");
        added.remove(0)
    }

    /// Takes the token away: its directory is moved out of the token directory.
    pub fn remove_token(&self) {
        std::fs::rename(self.tokens(), self.dir.path().join("tokens.away")).expect("move away");
        std::fs::create_dir(self.tokens()).expect("empty token dir");
    }

    /// Puts the token back where it was.
    pub fn restore_token(&self) {
        std::fs::remove_dir(self.tokens()).expect("remove the empty token dir");
        std::fs::rename(self.dir.path().join("tokens.away"), self.tokens()).expect("move back");
    }
}

fn init_token(hsm: &SoftHsm, label: &str) {
    let output = hsm
        .command("softhsm2-util")
        .args(["--init-token", "--free", "--label", label, "--pin", PIN])
        .args(["--so-pin", "5678"])
        .output()
        .expect("softhsm2-util runs (install Debian's softhsm2; scripts/test.sh does)");
    assert!(
        output.status.success(),
        "softhsm2-util --init-token: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn token_dirs(tokens: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tokens)
        .expect("token dir")
        .map(|entry| entry.expect("token dir entry").path())
        .collect()
}

impl ProxyBuilder {
    /// The signing key is `key_label` on `hsm`'s token (kid `kid`, `alg`) instead of a file.
    pub fn pkcs11_key(mut self, hsm: &SoftHsm, key_label: &str, alg: Alg, kid: &str) -> Self {
        self.doc.remove("signing.keys.0", "path");
        self.doc
            .set("signing.keys.0", "pkcs11", hsm.table(key_label));
        self.doc.set("signing.keys.0", "kid", kid);
        self.signing_alg(alg)
    }

    /// Managed signing keys of `alg` generated on `hsm`'s token (`[signing.managed] pkcs11`)
    /// instead of sealed under a KEK.
    pub fn managed_on_token(self, hsm: &SoftHsm, alg: Alg) -> Self {
        let mut builder = self.managed(alg);
        builder.doc.remove("signing.managed", "kek_file");
        builder.doc.set(
            "signing.managed",
            "pkcs11",
            json!({
                "module": MODULE,
                "token_label": hsm.token_label,
                "pin_file": hsm.pin_file(),
            }),
        );
        builder
    }
}
