//! TLS in both directions, with rustls and the aws-lc-rs provider, TLS 1.2 and 1.3 only.
//!
//! - Listeners: [`CertResolver`] holds the listener's certificate chain and key behind an
//!   `ArcSwap`; [`CertResolver::reload`] re-reads the PEM files, checks them (every certificate
//!   parses as X.509, the key parses and matches the leaf) and swaps, keeping the old pair on
//!   any error, so a bad new certificate never takes a listener down. [`server_config`] offers
//!   ALPN `h2` and `http/1.1`.
//! - Outbound (upstreams, IdP): [`ClientTls`] verifies servers against the webpki roots plus
//!   an optional private CA file, and optionally presents a client certificate (mTLS). Its
//!   [`ClientTls::id`] digests the file contents so equal settings share one connection pool.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Why TLS files or settings cannot be used. Every message names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: String },
    #[error("{path}: {message}")]
    BadPem { path: String, message: String },
    #[error("{path}: certificate #{index} is not a valid X.509 certificate: {message}")]
    BadCertificate {
        path: String,
        index: usize,
        message: String,
    },
    #[error("{path}: no private key found (expected PKCS#8, PKCS#1 or SEC1 PEM)")]
    NoKey { path: String },
    #[error("{path}: the private key cannot be used: {message}")]
    BadKey { path: String, message: String },
    #[error("{key} does not belong to the certificate in {cert}")]
    KeyMismatch { cert: String, key: String },
    #[error("TLS settings rejected: {0}")]
    Config(String),
}

impl TlsError {
    /// The file at fault, as shown in the message (for a mismatch: the key).
    pub fn path(&self) -> Option<&str> {
        match self {
            TlsError::Read { path, .. }
            | TlsError::NoCertificate { path }
            | TlsError::BadPem { path, .. }
            | TlsError::BadCertificate { path, .. }
            | TlsError::NoKey { path }
            | TlsError::BadKey { path, .. }
            | TlsError::KeyMismatch { key: path, .. } => Some(path),
            TlsError::Config(_) => None,
        }
    }
}

/// The crypto provider used everywhere: aws-lc-rs.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// TLS 1.2 and 1.3; never anything older.
const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: shown(path),
        source,
    })
}

/// Every certificate in a PEM file (leaf first for a chain), each checked to parse as X.509.
pub fn parse_certs(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::BadPem {
            path: shown(path),
            message: err.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: shown(path) });
    }
    for (index, cert) in certs.iter().enumerate() {
        ParsedCertificate::try_from(cert).map_err(|err| TlsError::BadCertificate {
            path: shown(path),
            index: index + 1,
            message: err.to_string(),
        })?;
    }
    Ok(certs)
}

/// The first private key in a PEM file.
pub fn parse_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|err| match err {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey { path: shown(path) },
        other => TlsError::BadPem {
            path: shown(path),
            message: other.to_string(),
        },
    })
}

/// A certificate chain and its private key from PEM files, checked to belong together.
pub fn load_certified_key(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    load_pair(files).map(|(certified, _)| certified)
}

/// Like [`load_certified_key`], also returning the files' bytes (for a digest).
fn load_pair(files: &TlsFiles) -> Result<(CertifiedKey, Vec<u8>), TlsError> {
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let chain = parse_certs(&cert_pem, &files.cert)?;
    let key = parse_key(&key_pem, &files.key)?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|err| TlsError::BadKey {
            path: shown(&files.key),
            message: err.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|err| match err {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
            cert: shown(&files.cert),
            key: shown(&files.key),
        },
        other => TlsError::BadCertificate {
            path: shown(&files.cert),
            index: 1,
            message: other.to_string(),
        },
    })?;
    let mut bytes = cert_pem;
    bytes.extend_from_slice(b"\0");
    bytes.extend_from_slice(&key_pem);
    Ok((certified, bytes))
}

/// A listener's certificate chain and key files (`tls_cert`, `tls_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The certificate a listener presents, swappable at run time.
pub struct CertResolver {
    /// "server" or "admin", for log lines.
    name: &'static str,
    files: TlsFiles,
    current: ArcSwap<CertifiedKey>,
}

impl std::fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertResolver")
            .field("name", &self.name)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl CertResolver {
    /// Loads the files once; an error here stops start-up.
    pub fn load(name: &'static str, files: TlsFiles) -> Result<Self, TlsError> {
        let certified = load_certified_key(&files)?;
        Ok(CertResolver {
            name,
            files,
            current: ArcSwap::from_pointee(certified),
        })
    }

    /// Which listener this is for ("server" or "admin").
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The files to watch for changes: the certificate chain and the key.
    pub fn watched_files(&self) -> [&Path; 2] {
        [&self.files.cert, &self.files.key]
    }

    /// Re-reads and checks both files, then swaps them in for new handshakes. On any error the
    /// current certificate stays in use and the error (naming the file) is logged and returned.
    pub fn reload(&self) -> Result<(), TlsError> {
        match load_certified_key(&self.files) {
            Ok(certified) => {
                self.current.store(Arc::new(certified));
                tracing::info!(listener = self.name, cert = %self.files.cert.display(), "TLS certificate reloaded");
                Ok(())
            }
            Err(err) => {
                tracing::error!(listener = self.name, error = %err, "TLS certificate reload failed; keeping the current certificate");
                Err(err)
            }
        }
    }

    /// The certificate and key now presented.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// A listener's TLS config: the resolver's certificate, TLS 1.2+, ALPN `h2` then `http/1.1`.
pub fn server_config(resolver: Arc<CertResolver>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|err| TlsError::Config(err.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // The server's order (the provider's: AES-256-GCM, AES-128-GCM, ChaCha20-Poly1305, all
    // AEAD with forward secrecy) decides, not the client's: testssl.sh rates a server
    // without its own cipher order HIGH (tests/it/scans.rs).
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// How outbound connections verify servers and identify themselves.
#[derive(Clone)]
pub struct ClientTls {
    /// Extra trust anchors (PEM), on top of the webpki roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key presented for mTLS.
    pub identity: Option<TlsFiles>,
    pub config: Arc<ClientConfig>,
    /// SHA-256 over the files' contents: equal settings share a connection pool.
    pub id: [u8; 32],
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca_file", &self.ca_file)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Reads and checks the CA file and the client identity.
    pub fn load(ca_file: Option<&Path>, identity: Option<&TlsFiles>) -> Result<Self, TlsError> {
        let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let mut extra = Vec::new();
        if let Some(path) = ca_file {
            let pem = read(path)?;
            digest.update(b"ca\0");
            digest.update(&pem);
            extra = parse_certs(&pem, path)?;
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .map_err(|err| TlsError::Config(err.to_string()))?
            .with_root_certificates(roots(extra, ca_file)?);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some(files) => {
                let (certified, bytes) = load_pair(files)?;
                digest.update(b"\0identity\0");
                digest.update(&bytes);
                builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)))
            }
        };
        let mut id = [0u8; 32];
        id.copy_from_slice(digest.finish().as_ref());
        Ok(ClientTls {
            ca_file: ca_file.map(Path::to_path_buf),
            identity: identity.cloned(),
            config: Arc::new(config),
            id,
        })
    }
}

/// The webpki roots plus `extra` (from `path`).
fn roots(
    extra: Vec<CertificateDer<'static>>,
    path: Option<&Path>,
) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for (index, cert) in extra.into_iter().enumerate() {
        roots.add(cert).map_err(|err| TlsError::BadCertificate {
            path: path.map(shown).unwrap_or_default(),
            index: index + 1,
            message: format!("not usable as a trust anchor: {err}"),
        })?;
    }
    Ok(roots)
}

/// The default outbound config: webpki roots, no client certificate.
pub fn default_client_config() -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .expect("aws-lc-rs supports TLS 1.2 and 1.3")
        .with_root_certificates(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn self_signed(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_matching_pair_loads_and_every_fault_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_a, key_a) = self_signed("a.test");
        let (_, key_b) = self_signed("b.test");
        let files = |cert: &str, key: &str| TlsFiles {
            cert: write(dir.path(), "cert.pem", cert),
            key: write(dir.path(), "key.pem", key),
        };
        assert!(load_certified_key(&files(&cert_a, &key_a)).is_ok());

        let err = load_certified_key(&files(&cert_a, &key_b)).unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
        assert!(err.to_string().contains("key.pem"), "{err}");

        let err = load_certified_key(&files("not a pem", &key_a)).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");

        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = load_certified_key(&files(garbage, &key_a)).unwrap_err();
        assert!(matches!(err, TlsError::BadCertificate { .. }), "{err}");

        let err = load_certified_key(&files(&cert_a, &cert_a)).unwrap_err();
        assert!(matches!(err, TlsError::NoKey { .. }), "{err}");

        let missing = TlsFiles {
            cert: dir.path().join("missing.pem"),
            key: dir.path().join("key.pem"),
        };
        let err = load_certified_key(&missing).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
    }

    #[test]
    fn reload_keeps_the_old_certificate_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_a, key_a) = self_signed("a.test");
        let files = TlsFiles {
            cert: write(dir.path(), "cert.pem", &cert_a),
            key: write(dir.path(), "key.pem", &key_a),
        };
        let resolver = CertResolver::load("server", files.clone()).unwrap();
        let before = resolver.current().cert[0].clone();
        let (_, key_b) = self_signed("b.test");
        write(dir.path(), "key.pem", &key_b);
        assert!(resolver.reload().is_err());
        assert_eq!(resolver.current().cert[0], before);

        let (cert_c, key_c) = self_signed("c.test");
        write(dir.path(), "cert.pem", &cert_c);
        write(dir.path(), "key.pem", &key_c);
        resolver.reload().unwrap();
        assert_ne!(resolver.current().cert[0], before);
        assert_eq!(resolver.watched_files(), [&*files.cert, &*files.key]);
    }

    #[test]
    fn client_settings_digest_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, _) = self_signed("ca.test");
        let ca_path = write(dir.path(), "ca.pem", &ca);
        let a = ClientTls::load(Some(&ca_path), None).unwrap();
        let b = ClientTls::load(Some(&ca_path), None).unwrap();
        assert_eq!(a.id, b.id);
        let (other, _) = self_signed("other.test");
        write(dir.path(), "ca.pem", &other);
        let c = ClientTls::load(Some(&ca_path), None).unwrap();
        assert_ne!(a.id, c.id);
        let none = ClientTls::load(None, None).unwrap();
        assert_ne!(none.id, a.id);
    }
}
