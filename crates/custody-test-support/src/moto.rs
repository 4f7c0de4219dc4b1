//! moto's server on loopback (`CUSTODY_MOTO`, the patched `tests/moto/moto-server`),
//! and its KMS driven by boto3 in the suite's Python (`CUSTODY_PYTHON`): keys are made,
//! disabled and read by the reference SDK, never by the code under test.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A moto server, stopped on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    port: u16,
    python: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto on a free loopback port; `None` (with a note naming `test`) when
    /// `CUSTODY_MOTO` or `CUSTODY_PYTHON` is unset.
    pub fn start(test: &str) -> Option<Self> {
        let (Ok(bin), Ok(python)) = (
            std::env::var("CUSTODY_MOTO"),
            std::env::var("CUSTODY_PYTHON"),
        ) else {
            eprintln!(
                "CUSTODY_MOTO/CUSTODY_PYTHON not set: {test} not run (cargo xtask test sets them)"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("its address")
            .port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto starts");
        for _ in 0..400 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self {
            child,
            port,
            python,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs `body` with `kms` bound to a boto3 KMS client of this server; its stdout,
    /// trimmed.
    pub fn kms(&self, body: &str) -> String {
        let script = format!(
            "import boto3, base64, sys\nkms = boto3.client('kms', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n{body}\n",
            self.endpoint()
        );
        let out = Command::new(&self.python)
            .args(["-c", &script])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "boto3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A new KMS key (`ECC_NIST_P256`, `SIGN_VERIFY` for a Custody signer); its id.
    pub fn kms_key(&self, spec: &str, usage: &str) -> String {
        self.kms(&format!(
            "print(kms.create_key(KeySpec='{spec}', KeyUsage='{usage}')['KeyMetadata']['KeyId'])"
        ))
    }

    /// The key's public key as PKIX PEM, as boto3 reads it.
    pub fn kms_public_pem(&self, key_id: &str) -> String {
        self.kms(&format!(
            "der = kms.get_public_key(KeyId='{key_id}')['PublicKey']\nb = base64.encodebytes(der).decode().replace('\\n', '')\nprint('-----BEGIN PUBLIC KEY-----')\nfor i in range(0, len(b), 64): print(b[i:i+64])\nprint('-----END PUBLIC KEY-----')"
        )) + "\n"
    }
}
