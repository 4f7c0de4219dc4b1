//! An RFC 3161 timestamp authority on loopback: OpenSSL's own `openssl ts -reply`
//! behind a small HTTP shim, with a root CA and a TSA certificate (RSA, as real TSAs
//! use, or ECDSA P-256) minted by `openssl` per test. What it signs is checked again
//! by `openssl ts -verify` in the tests, so Custody's verifier is held to OpenSSL's.

use std::io::{BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::http::read_head;

/// The TSA's key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsaKey {
    Rsa,
    EcdsaP256,
}

/// How the TSA answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Timestamps every request.
    Grant,
    /// Answers 503 to every request.
    Down,
    /// Answers the first request in this mode, then every later one with that same
    /// reply: a replay.
    Replay,
}

/// A running TSA. Its files stay in `dir` for the test's checks.
#[derive(Debug)]
pub struct Tsa {
    pub addr: SocketAddr,
    /// Holds `ca.pem` (the root to trust), `tsa.pem` (the TSA's certificate),
    /// `tsa.cnf`, and every query (`q<N>.tsq`) and reply (`q<N>.tsr`) it handled.
    pub dir: PathBuf,
    served: Arc<AtomicUsize>,
    behaviour: Arc<Mutex<Behaviour>>,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Mints a root CA and a TSA certificate under it in `dir` (`ca.pem`, `tsa.pem`,
/// `tsa.key`, `tsa.cnf`), the TSA's with the critical `timeStamping` usage.
pub fn mint(dir: &Path, key: TsaKey, subject: &str) {
    std::fs::create_dir_all(dir).expect("create the TSA directory");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3650",
            "-subj",
            &format!("/CN={subject} Root"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let newkey: &[&str] = match key {
        TsaKey::Rsa => &["-newkey", "rsa:2048"],
        TsaKey::EcdsaP256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    };
    let mut args = vec!["req"];
    args.extend_from_slice(newkey);
    let cn = format!("/CN={subject}");
    args.extend_from_slice(&[
        "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", &cn,
    ]);
    openssl(dir, &args);
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n\
         extendedKeyUsage=critical,timeStamping\nsubjectKeyIdentifier=hash\n\
         authorityKeyIdentifier=keyid\n",
    )
    .expect("write ext.cnf");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "tsa.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "tsa.pem",
            "-days",
            "3650",
            "-extfile",
            "ext.cnf",
        ],
    );
    let d = dir.display();
    std::fs::write(
        dir.join("tsa.cnf"),
        format!(
            "[ tsa ]\ndefault_tsa = tsa_config1\n[ tsa_config1 ]\ndir = {d}\n\
             serial = $dir/tsaserial\ncrypto_device = builtin\nsigner_cert = $dir/tsa.pem\n\
             certs = $dir/ca.pem\nsigner_key = $dir/tsa.key\nsigner_digest = sha256\n\
             default_policy = 1.2.3.4.1\nother_policies = 1.2.3.4.5.6\n\
             digests = sha256, sha384, sha512\naccuracy = secs:1\nclock_precision_digits = 0\n\
             ordering = no\ntsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n"
        ),
    )
    .expect("write tsa.cnf");
    std::fs::write(dir.join("tsaserial"), "01\n").expect("write the serial");
}

impl Tsa {
    /// Mints the certificates in `dir` and starts answering on 127.0.0.1.
    pub fn start(dir: &Path, key: TsaKey) -> Tsa {
        mint(dir, key, "Custody Test TSA");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("the listener's address");
        let served = Arc::new(AtomicUsize::new(0));
        let behaviour = Arc::new(Mutex::new(Behaviour::Grant));
        let (count, mode, root) = (
            Arc::clone(&served),
            Arc::clone(&behaviour),
            dir.to_path_buf(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Ok(read_half) = stream.try_clone() else {
                    continue;
                };
                let mut reader = BufReader::new(read_half);
                let Some(head) = read_head(&mut reader) else {
                    continue;
                };
                let n = head
                    .headers
                    .get("content-length")
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body = vec![0; n];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let i = count.fetch_add(1, Ordering::SeqCst);
                let mode = *mode.lock().unwrap_or_else(PoisonError::into_inner);
                let kept = root.join("replay.tsr");
                let reply = match mode {
                    Behaviour::Down => None,
                    Behaviour::Replay if kept.exists() => std::fs::read(&kept).ok(),
                    Behaviour::Grant | Behaviour::Replay => {
                        let q = format!("q{i}.tsq");
                        let r = format!("q{i}.tsr");
                        let _ = std::fs::write(root.join(&q), &body);
                        let ok = Command::new("openssl")
                            .args(["ts", "-reply", "-config", "tsa.cnf", "-queryfile", &q])
                            .args(["-out", &r])
                            .current_dir(&root)
                            .output()
                            .is_ok_and(|o| o.status.success());
                        let bytes = ok.then(|| std::fs::read(root.join(&r)).ok()).flatten();
                        if mode == Behaviour::Replay
                            && let Some(b) = &bytes
                        {
                            let _ = std::fs::write(&kept, b);
                        }
                        bytes
                    }
                };
                let _ = match reply {
                    Some(bytes) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n",
                            bytes.len()
                        );
                        stream.write_all(&bytes)
                    }
                    None => stream.write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                };
            }
        });
        Tsa {
            addr,
            dir: dir.to_path_buf(),
            served,
            behaviour,
        }
    }

    /// The URL to pass as `--tsa`.
    pub fn url(&self) -> String {
        format!("http://{}/tsr", self.addr)
    }

    /// The root certificate a verifier trusts.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// How many requests reached it.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    pub fn set(&self, b: Behaviour) {
        *self
            .behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = b;
    }
}
