//! A private certificate authority minted per test, and a TLS front that puts any
//! loopback HTTP server (moto, the GitLab and GitHub stand-ins, the OCI registry) behind
//! HTTPS with a certificate from that authority: the setup of a hospital network whose
//! TLS inspection re-signs every connection with an in-house CA.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A private CA and a server certificate it issued for `localhost` and `127.0.0.1`.
#[derive(Debug)]
pub struct TestCa {
    ca_pem: String,
    leaf_der: Vec<u8>,
    leaf_key_der: Vec<u8>,
}

impl TestCa {
    /// A new CA named `name` and a server certificate for the loopback names.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Custody tests");
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(params, ca_key);
        let leaf_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        let leaf_key = KeyPair::generate().expect("server key");
        let leaf = leaf_params
            .signed_by(&leaf_key, &issuer)
            .expect("server certificate");
        Self {
            ca_pem: ca_cert.pem(),
            leaf_der: leaf.der().to_vec(),
            leaf_key_der: leaf_key.serialize_der(),
        }
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes the CA certificate to `dir/NAME.pem` and returns the path (for `--ca-file`).
    pub fn write_ca(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, &self.ca_pem).expect("write CA file");
        path
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key_der.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.leaf_der.clone().into()], key)
            .expect("server certificate and key");
        Arc::new(config)
    }
}

/// HTTPS on a loopback port, forwarding every connection's plaintext to `backend`.
/// Stops when dropped.
#[derive(Debug)]
pub struct TlsFront {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TlsFront {
    /// Starts the front for `backend` with the server certificate `ca` issued.
    pub fn start(ca: &TestCa, backend: SocketAddr) -> Self {
        let acceptor = TlsAcceptor::from(ca.server_config());
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind TLS front");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("listener");
                let serve = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            // a client that refuses the certificate ends the handshake
                            let Ok(mut tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let Ok(mut plain) = TcpStream::connect(backend).await else {
                                return;
                            };
                            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                        });
                    }
                };
                tokio::select! {
                    () = serve => {}
                    _ = stopped => {}
                }
            });
        });
        Self {
            addr,
            stop: Some(stop),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
