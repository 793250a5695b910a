//! TLS for tests: a private CA issuing server and client certificates (rcgen), an HTTPS client
//! trusting it (HTTP/1.1 or HTTP/2, optionally with a client certificate), and a TLS front
//! that terminates TLS (optionally requiring a client certificate) before a plain loopback
//! server such as [`super::TestUpstream`] or [`super::TestIdp`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Method, Request, Version};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::client::Reply;

/// A private certificate authority.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

/// A certificate issued by a [`TestCa`], with its key.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        }
    }

    /// A server certificate for `localhost` and `127.0.0.1` with common name `name`.
    pub fn server(&self, name: &str) -> Issued {
        self.issue(name, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate (for mTLS) with common name `name`.
    pub fn client(&self, name: &str) -> Issued {
        self.issue(name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, name: &str, usage: ExtendedKeyUsagePurpose) -> Issued {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes the CA certificate to `dir/name`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).unwrap();
        path
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.pem.as_bytes()).unwrap())
            .unwrap();
        roots
    }

    /// A TLS client config trusting only this CA, with `identity` for mTLS.
    pub fn client_config(&self, identity: Option<&Issued>) -> ClientConfig {
        self.client_config_with(rustls::DEFAULT_VERSIONS, identity)
    }

    /// Like [`TestCa::client_config`], offering only `versions`.
    pub fn client_config_with(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        identity: Option<&Issued>,
    ) -> ClientConfig {
        let builder = ClientConfig::builder_with_provider(resigner::http::tls::provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(self.roots());
        match identity {
            None => builder.with_no_client_auth(),
            Some(id) => builder.with_client_auth_cert(id.chain(), id.key()).unwrap(),
        }
    }
}

impl Issued {
    /// Writes `STEM.pem` and `STEM-key.pem` into `dir`.
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}-key.pem"));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }

    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap()]
    }

    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap()
    }
}

/// Sends one request over HTTPS (`version` HTTP/1.1 or HTTP/2), trusting `config`'s roots.
/// Returns the reply and the HTTP version the server answered with.
pub async fn https_send(
    config: ClientConfig,
    version: Version,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply, String> {
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only();
    let mut client = Client::builder(TokioExecutor::new());
    let connector = if version == Version::HTTP_2 {
        client.http2_only(true);
        builder.enable_http2().build()
    } else {
        builder.enable_http1().build()
    };
    let client: Client<_, Full<Bytes>> = client.build(connector);
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    let mut headers = parts.headers;
    headers.insert(
        "x-test-http-version",
        format!("{:?}", parts.version).parse().unwrap(),
    );
    Ok(Reply {
        status: parts.status,
        headers,
        body,
    })
}

/// Completes a TLS handshake with `addr` and returns the leaf certificate it presented.
pub async fn presented_cert(addr: SocketAddr, ca: &TestCa) -> CertificateDer<'static> {
    let connector = TlsConnector::from(Arc::new(ca.client_config(None)));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let stream = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake");
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// A TLS-terminating front for a plain loopback server.
pub struct TlsFront {
    pub addr: SocketAddr,
    /// Handshakes that failed (for mTLS: a client without an acceptable certificate).
    pub failed_handshakes: Arc<AtomicUsize>,
}

impl TlsFront {
    /// Serves `cert` on a new loopback port and pipes each connection to `target`; with
    /// `client_ca`, a client certificate issued by it is required.
    pub async fn start(target: SocketAddr, cert: &Issued, client_ca: Option<&TestCa>) -> TlsFront {
        let builder = ServerConfig::builder_with_provider(resigner::http::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => builder.with_client_cert_verifier(
                rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(ca.roots()),
                    resigner::http::tls::provider(),
                )
                .build()
                .unwrap(),
            ),
        };
        let mut config = builder.with_single_cert(cert.chain(), cert.key()).unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let failed_handshakes = Arc::new(AtomicUsize::new(0));
        let failed = failed_handshakes.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, failed) = (acceptor.clone(), failed.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        failed.fetch_add(1, Ordering::SeqCst);
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsFront {
            addr,
            failed_handshakes,
        }
    }
}
