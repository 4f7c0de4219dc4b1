//! Local facts about the guard's own process and what it can reach: capabilities, no-new-privs,
//! seccomp and uid from `/proc/self/status`; container runtime sockets; ambient cloud credentials
//! (presence only); a Kubernetes service-account token; and whether the instance metadata
//! endpoint answers.
//!
//! Everything is read below a configurable root (`/` in production, a temporary directory in
//! tests) and from an injected [`Environment`], so every branch is testable without privileges.
//! Credential variables and files are checked for existence only: no value is read, so none can
//! leak. The metadata probe connects to a configurable address and, if it connects, asks for the
//! root path `/` only, never a credential path; tests point it at loopback.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::env::{
    AMBIENT_CREDENTIAL_VARIABLES, AWS_SHARED_CREDENTIALS_FILE, DOCKER_HOST, Environment, HOME,
    XDG_RUNTIME_DIR,
};

/// Linux capability number of CAP_SYS_ADMIN.
const CAP_SYS_ADMIN: u32 = 21;
/// CAP_CHOWN..=CAP_AUDIT_READ (0..=37): every capability that has existed since Linux 3.16.
/// A CapEff containing all of them is what `--privileged` and root without a bounding set give.
const FULL_CAP_SET: u64 = (1 << 38) - 1;
/// Capabilities that break isolation on their own, reported by name.
const DANGEROUS_CAPS: &[(u32, &str)] = &[
    (2, "CAP_DAC_READ_SEARCH"),
    (12, "CAP_NET_ADMIN"),
    (16, "CAP_SYS_MODULE"),
    (17, "CAP_SYS_RAWIO"),
    (19, "CAP_SYS_PTRACE"),
    (21, "CAP_SYS_ADMIN"),
    (39, "CAP_BPF"),
];

/// Container runtime sockets, absolute paths below the root.
const RUNTIME_SOCKETS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/run/k3s/containerd/containerd.sock",
    "/run/podman/podman.sock",
    "/var/run/podman/podman.sock",
    "/run/crio/crio.sock",
    "/var/run/crio/crio.sock",
    "/run/buildkit/buildkitd.sock",
];
/// Rootless runtime sockets, relative to `$XDG_RUNTIME_DIR` or `/run/user/<uid>`.
const USER_RUNTIME_SOCKETS: &[&str] = &[
    "docker.sock",
    "podman/podman.sock",
    "containerd/containerd.sock",
];
/// Credential files relative to `$HOME`.
const HOME_CREDENTIAL_FILES: &[&str] = &[
    ".aws/credentials",
    ".config/gcloud/application_default_credentials.json",
    ".config/gcloud/credentials.db",
    ".azure/msal_token_cache.json",
    ".azure/msal_token_cache.bin",
    ".azure/accessTokens.json",
    ".azure/service_principal_entries.json",
    ".kube/config",
    ".docker/config.json",
];
/// Projected workload-identity token files, absolute paths below the root.
const SYSTEM_CREDENTIAL_FILES: &[&str] = &[
    "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    "/var/run/secrets/azure/tokens/azure-identity-token",
];
/// Kubernetes service-account token.
pub const KUBERNETES_SA_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// What the local probes look at.
#[derive(Debug, Clone)]
pub struct LocalProbe {
    /// Stands in for `/`: `<root>/proc/self/status`, `<root>/var/run/docker.sock`, and `$HOME`
    /// resolved below it.
    pub root: PathBuf,
    /// The environment whose credential variables are checked (presence only).
    pub env: Environment,
    /// Address probed for instance metadata; `None` skips the probe.
    pub metadata_endpoint: Option<SocketAddr>,
    /// Timeout of the metadata probe (connect, and read of the status line).
    pub probe_timeout: Duration,
}

/// The metadata probe's finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum MetadataProbe {
    /// Not probed (no endpoint configured).
    NotProbed,
    /// The endpoint accepted a TCP connection.
    #[serde(rename_all = "camelCase")]
    Reachable {
        endpoint: String,
        /// First line of the answer to `GET /`, if one came within the timeout.
        status_line: Option<String>,
    },
    /// No connection within the timeout.
    #[serde(rename_all = "camelCase")]
    Unreachable { endpoint: String, reason: String },
}

/// Facts from `/proc/self/status`. `None` fields were absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessStatus {
    /// Effective uid (second field of `Uid:`).
    pub uid: Option<u32>,
    /// Effective capability set, as the hex mask.
    pub cap_eff: Option<String>,
    /// Whether CapEff holds CAP_SYS_ADMIN or the full set.
    pub privileged: Option<bool>,
    /// Names of isolation-breaking capabilities in CapEff.
    pub dangerous_capabilities: Vec<String>,
    pub no_new_privs: Option<bool>,
    /// 0 disabled, 1 strict, 2 filter.
    pub seccomp: Option<u8>,
}

/// Everything the local probes found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalFacts {
    /// `None` when `/proc/self/status` could not be read (not Linux, or no procfs).
    pub status: Option<ProcessStatus>,
    /// Why the status could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_error: Option<String>,
    /// Container runtime sockets present (absolute paths), plus `DOCKER_HOST` if set.
    pub container_runtime_access: Vec<String>,
    /// Names of credential variables that are set. Values are never read.
    pub ambient_credential_variables: Vec<String>,
    /// Credential files that exist (absolute paths). Contents are never read.
    pub ambient_credential_files: Vec<String>,
    pub kubernetes_service_account_token: bool,
    pub metadata: MetadataProbe,
}

impl LocalProbe {
    /// Probes the real process: root `/`, the process environment, and the tier model's
    /// metadata endpoint.
    pub fn for_this_process(metadata_endpoint: SocketAddr, probe_timeout: Duration) -> Self {
        Self {
            root: PathBuf::from("/"),
            env: Environment::from_process(),
            metadata_endpoint: Some(metadata_endpoint),
            probe_timeout,
        }
    }

    /// `<root>/<absolute>`.
    fn under_root(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    /// Runs every probe.
    pub fn gather(&self) -> LocalFacts {
        let (status, status_error) =
            match std::fs::read_to_string(self.under_root("/proc/self/status")) {
                Ok(text) => (Some(parse_status(&text)), None),
                Err(e) => (None, Some(format!("could not read /proc/self/status: {e}"))),
            };
        let uid = status.as_ref().and_then(|s| s.uid);
        LocalFacts {
            status,
            status_error,
            container_runtime_access: self.runtime_sockets(uid),
            ambient_credential_variables: AMBIENT_CREDENTIAL_VARIABLES
                .iter()
                .filter(|v| self.env.is_set(v))
                .map(|v| (*v).to_owned())
                .collect(),
            ambient_credential_files: self.credential_files(),
            kubernetes_service_account_token: exists(&self.under_root(KUBERNETES_SA_TOKEN)),
            metadata: match self.metadata_endpoint {
                Some(addr) => probe_metadata(addr, self.probe_timeout),
                None => MetadataProbe::NotProbed,
            },
        }
    }

    fn runtime_sockets(&self, uid: Option<u32>) -> Vec<String> {
        let mut found: Vec<String> = RUNTIME_SOCKETS
            .iter()
            .filter(|p| exists(&self.under_root(p)))
            .map(|p| (*p).to_owned())
            .collect();
        let mut user_dirs = Vec::new();
        if let Some(dir) = self.env.get(XDG_RUNTIME_DIR) {
            user_dirs.push(dir.trim_end_matches('/').to_owned());
        }
        if let Some(uid) = uid {
            user_dirs.push(format!("/run/user/{uid}"));
        }
        user_dirs.dedup();
        for dir in user_dirs {
            for sock in USER_RUNTIME_SOCKETS {
                let path = format!("{dir}/{sock}");
                if exists(&self.under_root(&path)) && !found.contains(&path) {
                    found.push(path);
                }
            }
        }
        if self.env.is_set(DOCKER_HOST) {
            found.push(format!("${DOCKER_HOST} is set"));
        }
        found
    }

    fn credential_files(&self) -> Vec<String> {
        let mut found = Vec::new();
        if let Some(home) = self.env.get(HOME) {
            let home = home.trim_end_matches('/');
            for rel in HOME_CREDENTIAL_FILES {
                let path = format!("{home}/{rel}");
                if exists(&self.under_root(&path)) {
                    found.push(path);
                }
            }
        }
        // A path, not a secret: where the AWS CLI looks instead of ~/.aws/credentials.
        if let Some(path) = self.env.get(AWS_SHARED_CREDENTIALS_FILE)
            && path.starts_with('/')
            && exists(&self.under_root(path))
            && !found.iter().any(|f| f == path)
        {
            found.push(path.to_owned());
        }
        for path in SYSTEM_CREDENTIAL_FILES {
            if exists(&self.under_root(path)) {
                found.push((*path).to_owned());
            }
        }
        found
    }
}

/// Presence without following the path into the file: a dangling socket symlink still counts.
fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Parses the fields the guard needs from `/proc/<pid>/status`.
pub fn parse_status(text: &str) -> ProcessStatus {
    let mut status = ProcessStatus::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            // Uid: real effective saved filesystem
            "Uid" => status.uid = value.split_whitespace().nth(1).and_then(|u| u.parse().ok()),
            "CapEff" => {
                if let Ok(mask) = u64::from_str_radix(value, 16) {
                    status.cap_eff = Some(value.to_owned());
                    status.privileged = Some(
                        mask & (1 << CAP_SYS_ADMIN) != 0 || mask & FULL_CAP_SET == FULL_CAP_SET,
                    );
                    status.dangerous_capabilities = DANGEROUS_CAPS
                        .iter()
                        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
                        .map(|(_, name)| (*name).to_owned())
                        .collect();
                }
            }
            "NoNewPrivs" => status.no_new_privs = value.parse::<u8>().ok().map(|v| v == 1),
            "Seccomp" => status.seccomp = value.parse().ok(),
            _ => {}
        }
    }
    status
}

/// Connects to `addr`; if it connects, sends `GET /` (the root path only, never a credential
/// path) and reads the status line.
pub fn probe_metadata(addr: SocketAddr, timeout: Duration) -> MetadataProbe {
    let endpoint = addr.to_string();
    let mut stream = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) => {
            return MetadataProbe::Unreachable {
                endpoint,
                reason: e.to_string(),
            };
        }
    };
    let status_line = (|| {
        stream.set_read_timeout(Some(timeout)).ok()?;
        stream.set_write_timeout(Some(timeout)).ok()?;
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nUser-Agent: custody-runner-guard\r\nConnection: close\r\n\r\n",
            addr.ip()
        );
        stream.write_all(request.as_bytes()).ok()?;
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).ok()?;
        let head = String::from_utf8_lossy(buf.get(..n)?).into_owned();
        head.lines()
            .next()
            .filter(|l| l.starts_with("HTTP/"))
            .map(str::to_owned)
    })();
    MetadataProbe::Reachable {
        endpoint,
        status_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_unprivileged_runner() {
        let s = parse_status(
            "Name:\tguard\nUid:\t1001\t1001\t1001\t1001\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n",
        );
        assert_eq!(s.uid, Some(1001));
        assert_eq!(s.privileged, Some(false));
        assert_eq!(s.no_new_privs, Some(true));
        assert_eq!(s.seccomp, Some(2));
        assert!(s.dangerous_capabilities.is_empty());
    }

    #[test]
    fn full_set_and_sys_admin_are_privileged_default_docker_set_is_not() {
        let cap = |mask: &str| parse_status(&format!("CapEff:\t{mask}\n"));
        assert_eq!(cap("000001ffffffffff").privileged, Some(true));
        assert_eq!(cap("0000003fffffffff").privileged, Some(true));
        assert_eq!(cap("0000000000200000").privileged, Some(true));
        // Docker's default capability set for root in a container.
        let docker = cap("00000000a80425fb");
        assert_eq!(docker.privileged, Some(false));
        assert!(docker.dangerous_capabilities.is_empty());
        assert_eq!(
            cap("0000000000080000").dangerous_capabilities,
            vec!["CAP_SYS_PTRACE"]
        );
    }

    #[test]
    fn uid_is_the_effective_one() {
        assert_eq!(parse_status("Uid:\t1000\t0\t0\t0\n").uid, Some(0));
    }
}
