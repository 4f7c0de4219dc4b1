//! Local facts against a fake root, each branch with its clean twin, plus one run on the real
//! machine. The metadata probe only ever targets loopback.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::time::Duration;

use custody_guard::{Environment, LocalFacts, LocalProbe, MetadataProbe};
use custody_test_support::closed_port;

use crate::support::{CLEAN_STATUS, FakeRoot};

fn probe(root: &FakeRoot, env: &[(&str, &str)]) -> LocalFacts {
    let facts = LocalProbe {
        root: root.path().to_owned(),
        env: Environment::from_map(env.iter().copied()),
        metadata_endpoint: Some(closed_port()),
        probe_timeout: Duration::from_millis(300),
    }
    .gather();
    assert!(matches!(facts.metadata, MetadataProbe::Unreachable { .. }));
    facts
}

#[test]
fn clean_root_has_nothing_to_report() {
    let facts = probe(&FakeRoot::clean(), &[("HOME", "/home/runner")]);
    let status = facts.status.as_ref().unwrap();
    assert_eq!(status.uid, Some(1001));
    assert_eq!(status.privileged, Some(false));
    assert_eq!(status.no_new_privs, Some(true));
    assert_eq!(status.seccomp, Some(2));
    assert!(facts.container_runtime_access.is_empty());
    assert!(facts.ambient_credential_variables.is_empty());
    assert!(facts.ambient_credential_files.is_empty());
    assert!(!facts.kubernetes_service_account_token);
}

#[test]
fn privileged_capabilities_are_detected() {
    let root = FakeRoot::new(
        &CLEAN_STATUS.replace("CapEff:\t0000000000000000", "CapEff:\t000001ffffffffff"),
    );
    let status = probe(&root, &[]).status.unwrap();
    assert_eq!(status.privileged, Some(true));
    assert!(
        status
            .dangerous_capabilities
            .contains(&"CAP_SYS_ADMIN".to_owned())
    );
    let root = FakeRoot::new(
        &CLEAN_STATUS.replace("CapEff:\t0000000000000000", "CapEff:\t0000000000200000"),
    );
    assert_eq!(probe(&root, &[]).status.unwrap().privileged, Some(true));
}

#[test]
fn uid_zero_is_detected() {
    let root =
        FakeRoot::new(&CLEAN_STATUS.replace("Uid:\t1001\t1001\t1001\t1001", "Uid:\t0\t0\t0\t0"));
    assert_eq!(probe(&root, &[]).status.unwrap().uid, Some(0));
}

#[test]
fn missing_proc_status_is_reported_not_guessed() {
    let root = FakeRoot::clean();
    std::fs::remove_file(root.path().join("proc/self/status")).unwrap();
    let facts = probe(&root, &[]);
    assert!(facts.status.is_none());
    assert!(facts.status_error.unwrap().contains("/proc/self/status"));
}

#[test]
fn container_runtime_sockets_are_detected() {
    for socket in [
        "/var/run/docker.sock",
        "/run/containerd/containerd.sock",
        "/run/podman/podman.sock",
        "/run/crio/crio.sock",
        "/run/user/1001/docker.sock",
    ] {
        let root = FakeRoot::clean();
        root.file(socket, "");
        let facts = probe(&root, &[]);
        assert_eq!(
            facts.container_runtime_access,
            vec![socket.to_owned()],
            "{socket}"
        );
    }
    let facts = probe(
        &FakeRoot::clean(),
        &[("DOCKER_HOST", "tcp://10.0.0.1:2375")],
    );
    assert_eq!(
        facts.container_runtime_access,
        vec!["$DOCKER_HOST is set".to_owned()]
    );
}

#[test]
fn ambient_aws_credential_variables_are_detected_by_name_only() {
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let facts = probe(
        &FakeRoot::clean(),
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("PATH", "/usr/bin"),
        ],
    );
    assert_eq!(
        facts.ambient_credential_variables,
        vec![
            "AWS_ACCESS_KEY_ID".to_owned(),
            "AWS_SECRET_ACCESS_KEY".to_owned()
        ]
    );
    let json = serde_json::to_string(&facts).unwrap();
    assert!(!json.contains(secret) && !json.contains("AKIAIOSFODNN7EXAMPLE"));
    assert!(!format!("{facts:?}").contains(secret));
}

#[test]
fn ambient_credential_files_are_detected_without_reading_them() {
    let root = FakeRoot::clean();
    root.file(
        "/home/runner/.aws/credentials",
        "[default]\naws_secret_access_key = FILESECRET\n",
    );
    root.file(
        "/home/runner/.config/gcloud/application_default_credentials.json",
        "{}",
    );
    root.file(
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
        "KUBETOKEN",
    );
    let facts = probe(&root, &[("HOME", "/home/runner")]);
    assert_eq!(
        facts.ambient_credential_files,
        vec![
            "/home/runner/.aws/credentials".to_owned(),
            "/home/runner/.config/gcloud/application_default_credentials.json".to_owned(),
        ]
    );
    assert!(facts.kubernetes_service_account_token);
    let json = serde_json::to_string(&facts).unwrap();
    assert!(!json.contains("FILESECRET") && !json.contains("KUBETOKEN"));
    // An alternative credentials file named by AWS_SHARED_CREDENTIALS_FILE counts too.
    let root = FakeRoot::clean();
    root.file("/etc/ci/aws-creds", "x");
    let facts = probe(
        &root,
        &[("AWS_SHARED_CREDENTIALS_FILE", "/etc/ci/aws-creds")],
    );
    assert_eq!(
        facts.ambient_credential_files,
        vec!["/etc/ci/aws-creds".to_owned()]
    );
    assert_eq!(facts.ambient_credential_variables, Vec::<String>::new());
}

#[test]
fn metadata_endpoint_on_loopback_listener_is_reachable_and_only_root_is_asked() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).unwrap();
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    let facts = LocalProbe {
        root: FakeRoot::clean().path().to_owned(),
        env: Environment::default(),
        metadata_endpoint: Some(addr),
        probe_timeout: Duration::from_millis(300),
    }
    .gather();
    let request = server.join().unwrap();
    assert_eq!(
        facts.metadata,
        MetadataProbe::Reachable {
            endpoint: addr.to_string(),
            status_line: Some("HTTP/1.1 200 OK".into())
        }
    );
    assert!(request.starts_with("GET / HTTP/1.1\r\n"), "{request}");
    assert!(!request.contains("credentials") && !request.contains("latest/meta-data"));
}

#[test]
fn metadata_endpoint_on_closed_port_is_unreachable() {
    let port = closed_port();
    let started = std::time::Instant::now();
    let result = custody_guard::local::probe_metadata(port, Duration::from_millis(300));
    assert!(
        matches!(result, MetadataProbe::Unreachable { .. }),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Runs the probes on this machine (metadata probe at a closed loopback port) and prints them.
#[test]
fn real_machine_facts() {
    let mut probe = LocalProbe::for_this_process(closed_port(), Duration::from_millis(300));
    assert!(probe.metadata_endpoint.unwrap().ip().is_loopback());
    probe.metadata_endpoint = Some(closed_port());
    let facts = probe.gather();
    eprintln!(
        "local facts on this machine:\n{}",
        serde_json::to_string_pretty(&facts).unwrap()
    );
    if cfg!(target_os = "linux") {
        let status = facts
            .status
            .expect("/proc/self/status is readable on Linux");
        assert!(status.uid.is_some() && status.cap_eff.is_some());
    }
    assert!(matches!(facts.metadata, MetadataProbe::Unreachable { .. }));
}
