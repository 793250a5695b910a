//! `resigner certs dev`: a development CA and a localhost server certificate, so trying HTTPS
//! takes one command. The CA's private key is never written: nothing else can be signed by a
//! CA a developer may have told a browser to trust, and running the command again (in a new
//! directory) makes a fresh pair. Not for production: use certificates from your real CA.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::cli::files::{at, write_private};

/// Why the development certificates could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("{0} exists; refusing to overwrite it (move it away or pick another --out)")]
    Exists(String),
    #[error("cannot write {0}: {1}")]
    Write(String, #[source] std::io::Error),
    #[error("cannot generate the certificates: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The files written by [`write_dev_certs`].
#[derive(Debug, Clone)]
pub struct DevCerts {
    /// The development CA certificate: what clients trust (`curl --cacert`).
    pub ca: PathBuf,
    /// The localhost certificate (`[server] tls_cert`).
    pub cert: PathBuf,
    /// Its private key, mode 0600 (`[server] tls_key`).
    pub key: PathBuf,
}

/// Names of the files in the output directory.
pub const CA_FILE: &str = "dev-ca.pem";
pub const CERT_FILE: &str = "localhost.pem";
pub const KEY_FILE: &str = "localhost-key.pem";

/// Validity: the CA ten years, the server certificate 397 days (below the 398 days browsers
/// accept), both from one day back to tolerate clock skew.
const DAY: Duration = Duration::from_secs(86_400);

/// Writes a development CA certificate and a server certificate for `localhost`, `127.0.0.1`
/// and `::1` (with its key) into `out`, creating it; refuses to overwrite any file.
pub fn write_dev_certs(out: &Path) -> Result<DevCerts, CertsError> {
    let files = DevCerts {
        ca: out.join(CA_FILE),
        cert: out.join(CERT_FILE),
        key: out.join(KEY_FILE),
    };
    for path in [&files.ca, &files.cert, &files.key] {
        if path.exists() {
            return Err(CertsError::Exists(path.display().to_string()));
        }
    }
    let (ca_pem, cert_pem, key_pem) = generate()?;
    std::fs::create_dir_all(out).map_err(at(out, CertsError::Write))?;
    write_private(&files.key, &key_pem).map_err(at(&files.key, CertsError::Write))?;
    std::fs::write(&files.cert, cert_pem).map_err(at(&files.cert, CertsError::Write))?;
    std::fs::write(&files.ca, ca_pem).map_err(at(&files.ca, CertsError::Write))?;
    Ok(files)
}

/// `resigner certs dev`: writes the files into `out` and prints how to use them.
pub fn dev(out: &Path) -> Result<(), CertsError> {
    let files = write_dev_certs(out)?;
    let absolute = |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    println!(
        "wrote {} (development CA), {} and {} (localhost certificate and key, 0600)\n\n\
         Serve HTTPS: in [server] (or [admin]; relative paths would be resolved from \
         the config file's directory)\n  \
         tls_cert = \"{}\"\n  tls_key = \"{}\"\n\
         Then trust the CA in clients, for example:\n  \
         curl --cacert {} https://localhost:8080/.well-known/jwks.json\n\
         Development only: do not add this CA to a system trust store you keep.",
        files.ca.display(),
        files.cert.display(),
        files.key.display(),
        absolute(&files.cert).display(),
        absolute(&files.key).display(),
        files.ca.display(),
    );
    Ok(())
}

/// PEM text of the CA certificate, the server certificate and the server key.
fn generate() -> Result<(String, String, String), CertsError> {
    let now = rcgen::date_time_ymd(1970, 1, 1)
        + Duration::from_secs(crate::jose::time::now_unix() as u64);
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "resigner development CA");
    ca.distinguished_name
        .push(DnType::OrganizationName, "resigner (development only)");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - DAY;
    ca.not_after = now + DAY * 3650;
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = now - DAY;
    leaf.not_after = now + DAY * 397;
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok((ca_cert.pem(), leaf_cert.pem(), leaf_key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::tls::{TlsFiles, load_certified_key};

    #[test]
    fn writes_a_usable_pair_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("certs");
        let files = write_dev_certs(&out).unwrap();
        let certified = load_certified_key(&TlsFiles {
            cert: files.cert.clone(),
            key: files.key.clone(),
        })
        .unwrap();
        assert_eq!(certified.cert.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let before = std::fs::read(&files.ca).unwrap();
        let err = write_dev_certs(&out).unwrap_err();
        assert!(matches!(err, CertsError::Exists(_)), "{err}");
        assert_eq!(std::fs::read(&files.ca).unwrap(), before);
    }
}
