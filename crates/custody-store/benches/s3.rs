//! Uploading one large material (default 1 GiB; `CUSTODY_BENCH_BYTES` sets the size)
//! to the local store and to an S3 store on a loopback moto server, printing throughput
//! and peak memory as a Markdown table. Each upload runs in a process of its own so its
//! peak RSS (`VmHWM`) is its own. The S3 row needs `CUSTODY_MOTO` (a `moto_server`, as
//! `cargo xtask test` sets up). Run with `cargo bench -p custody-store --bench s3`.
//!
//! What it shows: both stores stream (peak RSS stays in the tens of MiB whatever the
//! size); the S3 time includes hashing the file before the upload (the digest must be
//! known for the checksum header) and moto's own processing, so it measures the client
//! path, not S3.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use custody_store::{
    EvidenceStore, LocalStore, ObjectSource, Retention, S3Store, StaticCredentials, StoreOptions,
};

const ROLE: &str = "CUSTODY_BENCH_ROLE";

fn main() {
    let size: u64 = std::env::var("CUSTODY_BENCH_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1 << 30);
    match std::env::var(ROLE).as_deref() {
        Ok("local") => return child_local(),
        Ok("s3") => return child_s3(),
        _ => {}
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-s3");
    std::fs::create_dir_all(&dir).unwrap();
    let material = dir.join("material.bin");
    make_material(&material, size);

    let mut rows = Vec::new();
    rows.push((
        "local store (fsync)".to_owned(),
        run_child("local", &material, &[]),
    ));
    match std::env::var_os("CUSTODY_MOTO") {
        Some(moto) => {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut server = Command::new(moto)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            wait_for(port);
            let endpoint = format!("http://127.0.0.1:{port}");
            let result = run_child("s3", &material, &[("CUSTODY_BENCH_ENDPOINT", &endpoint)]);
            let server_hwm = hwm_kib(&format!("/proc/{}/status", server.id()));
            let _ = server.kill();
            let _ = server.wait();
            rows.push((
                format!(
                    "S3 store → moto on loopback (server peak RSS {} MiB)",
                    server_hwm / 1024
                ),
                result,
            ));
        }
        None => eprintln!("S3 row not run: set CUSTODY_MOTO to a moto_server"),
    }
    let _ = std::fs::remove_file(&material);
    let _ = std::fs::remove_dir_all(dir.join("store"));

    println!("| store | size | time | throughput | client peak RSS |");
    println!("|---|---:|---:|---:|---:|");
    for (name, (secs, hwm)) in rows {
        println!(
            "| {name} | {} MiB | {secs:.2} s | {:.0} MiB/s | {} MiB |",
            size >> 20,
            (size as f64 / (1 << 20) as f64) / secs,
            hwm / 1024
        );
    }
}

/// Runs one upload in a fresh process; returns (seconds, peak RSS in KiB).
fn run_child(role: &str, material: &Path, env: &[(&str, &str)]) -> (f64, u64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, role)
        .env("CUSTODY_BENCH_MATERIAL", material)
        .envs(env.iter().copied())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "{role} upload failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap();
    let mut parts = line.split_whitespace();
    let secs: f64 = parts.next().unwrap().parse().unwrap();
    let hwm: u64 = parts.next().unwrap().parse().unwrap();
    (secs, hwm)
}

fn material() -> PathBuf {
    PathBuf::from(std::env::var_os("CUSTODY_BENCH_MATERIAL").unwrap())
}

fn child_local() {
    let path = material();
    let root = path.with_file_name("store");
    let _ = std::fs::remove_dir_all(&root);
    let store = LocalStore::create(&root).unwrap();
    let retention = Retention::hipaa_default().unwrap();
    let t0 = Instant::now();
    let put = store
        .put_object_blocking(ObjectSource::File(&path), &retention)
        .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert!(put.created);
    println!("RESULT {secs} {}", hwm_kib("/proc/self/status"));
}

fn child_s3() {
    let endpoint = std::env::var("CUSTODY_BENCH_ENDPOINT").unwrap();
    let path = material();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let options = StoreOptions {
            endpoint_url: Some(endpoint.clone()),
            region: Some("us-east-1".into()),
            force_path_style: true,
            credentials: Some(StaticCredentials {
                access_key_id: "testing".into(),
                secret_access_key: "testing".into(),
                session_token: None,
            }),
            ..Default::default()
        };
        create_locked_bucket(&endpoint, "custody-bench");
        let store = S3Store::new("s3://custody-bench/bench", options).unwrap();
        let retention = Retention::hipaa_default().unwrap();
        let t0 = Instant::now();
        let put = store
            .put_object(ObjectSource::File(&path), &retention)
            .await
            .unwrap();
        let secs = t0.elapsed().as_secs_f64();
        assert!(put.created);
        println!("RESULT {secs} {}", hwm_kib("/proc/self/status"));
    });
}

/// `PUT /bucket` with Object Lock, in plain HTTP (moto takes unsigned requests).
fn create_locked_bucket(endpoint: &str, bucket: &str) {
    let addr = endpoint.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: {addr}\r\nx-amz-bucket-object-lock-enabled: true\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 200") || resp.starts_with("HTTP/1.0 200"),
        "{resp}"
    );
}

fn make_material(path: &Path, size: u64) {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == size) {
        return;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; 1 << 20];
    let mut written = 0u64;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    while written < size {
        // xorshift: incompressible, so no layer can cheat by compressing
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let n = (size - written).min(block.len() as u64) as usize;
        f.write_all(&block[..n]).unwrap();
        written += n as u64;
    }
    f.flush().unwrap();
}

fn wait_for(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
}

fn hwm_kib(status: &str) -> u64 {
    std::fs::read_to_string(status)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
