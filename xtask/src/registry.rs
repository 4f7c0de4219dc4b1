//! A local OCI registry for policy-check's cosign tests: Debian's `docker-registry`
//! (the CNCF distribution registry), installed with apt when missing, started on
//! 127.0.0.1 with a temporary storage directory, stopped when the guard drops.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::util;

const BINARY: &str = "/usr/bin/docker-registry";

/// The running registry; killed on drop.
pub struct Registry {
    child: Child,
    pub addr: String,
    _dir: PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// True once `GET /v2/` answers.
fn answers(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(s, "GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.")
}

/// Installs and starts the registry on a free loopback port.
pub fn start() -> anyhow::Result<Registry> {
    util::debian_package("docker-registry", BINARY)?;
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let dir = std::env::temp_dir().join(format!("custody-registry-{}-{port}", std::process::id()));
    std::fs::create_dir_all(dir.join("data"))?;
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.join("data").display()
        ),
    )?;
    let child = Command::new(BINARY)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {BINARY}"))?;
    let reg = Registry {
        child,
        addr: addr.clone(),
        _dir: dir,
    };
    let start = Instant::now();
    while !answers(&addr) {
        if start.elapsed() > Duration::from_secs(30) {
            bail!("docker-registry did not answer on {addr} within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("docker-registry listening on {addr}");
    Ok(reg)
}
