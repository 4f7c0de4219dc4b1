//! Uploading one large material (default 1 GiB; `CUSTODY_BENCH_BYTES` sets the size)
//! to the local store, and to S3 on a loopback moto server side by side with
//! `aws s3 cp` of the same file (issue 18: Custody must be at least as fast), printing
//! a Markdown table. Run with `cargo bench -p custody-store --bench s3`.
//!
//! Every upload is a process of its own, timed from spawn to exit by this one, with
//! its CPU time and peak RSS from GNU time (`/usr/bin/time`, when present). The rows
//! take turns (A B C A B C …, `CUSTODY_BENCH_REPS` rounds, default 5) and the table
//! shows the median. Each S3 upload gets a fresh moto server, because moto keeps every object in
//! memory and a locked object cannot be deleted; its bucket is created beforehand, with
//! Object Lock enabled (`x-amz-bucket-object-lock-enabled`, what
//! `ObjectLockEnabledForBucket` sends), and the server's own peak RSS is reported too.
//!
//! - `CUSTODY_MOTO`: a `moto_server` (`tests/moto/moto-server` or
//!   `.venv/bin/moto_server`, as `cargo xtask test` sets up). Without it only the local
//!   store row runs.
//! - `CUSTODY_AWS`: the `aws` of awscli (`tests/bench-requirements.txt`); default: an
//!   `aws` next to `CUSTODY_MOTO`. Without it the `aws s3 cp` rows are left out.
//!   It runs with its own defaults (8 MiB parts, 10 in flight, CRC32 per part), once
//!   as is and once with `--checksum-algorithm SHA256`; its bucket has a default
//!   COMPLIANCE retention, since `aws s3 cp` cannot lock an object itself.
//! - `CUSTODY_BENCH_VARIANTS`: extra Custody rows with other part sizes and
//!   concurrency, e.g. `16x8,8x16` (MiB per part × parts in flight); a trailing `m`
//!   (`8x8m`) runs the store on a multi-threaded runtime instead of the
//!   single-threaded one the steps use.
//! - `CUSTODY_BENCH_DIR`: where the material and the local store go (default
//!   `target/bench-s3`; about twice the size is needed).
//!
//! moto keeps each object and part in memory here (`MOTO_S3_DEFAULT_KEY_BUFFER_SIZE`
//! above the size): by default it spills everything over 5 MiB to temporary files,
//! which would time the disk, and need twice the size free in `TMPDIR` per upload.
//!
//! What it shows: the client path, not S3. Custody names an object by its SHA-256, so
//! it needs the digest before it sends a byte: evidence-upload has it from its plan
//! (`ObjectSource::Measured`, the first Custody row), a bare `ObjectSource::File`
//! makes the store hash the file first (the second; a row times that hash alone). The
//! parts then go up with a CRC32 each, the whole file's SHA-256 checked as they are
//! read. Most of both sides' time is moto's, which shares the machine's cores with the
//! client (hence the client CPU column).

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
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use custody_store::{
    EvidenceStore, LocalStore, ObjectSource, Retention, S3Store, StaticCredentials, StoreOptions,
};

const ROLE: &str = "CUSTODY_BENCH_ROLE";
const MIB: u64 = 1 << 20;

/// One row of the table: what runs in the child process for each repetition.
enum Side {
    Local,
    /// The SHA-256 of the whole file that `S3Store` takes before uploading, alone.
    Hash,
    /// Custody's S3 store with this part size (bytes) and parts in flight; `measured`:
    /// given the file's digest, as evidence-upload stores (it hashed the file while
    /// planning), instead of a bare file the store hashes first.
    Custody {
        part: u64,
        concurrency: usize,
        multi_thread: bool,
        measured: bool,
    },
    /// `aws s3 cp`, with `--checksum-algorithm SHA256` or with its default.
    Aws {
        aws: PathBuf,
        sha256: bool,
    },
}

impl Side {
    fn name(&self) -> String {
        let defaults = StoreOptions::default();
        match self {
            Side::Local => "Custody local store (fsync)".into(),
            Side::Hash => "of which: Custody's whole-file SHA-256 before the upload, alone".into(),
            Side::Custody {
                part,
                concurrency,
                multi_thread: false,
                measured,
            } if *part == defaults.part_size && *concurrency == defaults.upload_concurrency => {
                format!(
                    "Custody `S3Store::put_object` ({}; {} MiB parts, {concurrency} in flight)",
                    if *measured {
                        "`Measured`: digest from the plan, as evidence-upload stores"
                    } else {
                        "`File`: the store hashes it first"
                    },
                    part / MIB
                )
            }
            Side::Custody {
                part,
                concurrency,
                multi_thread,
                ..
            } => format!(
                "Custody, tuned: {} MiB parts, {concurrency} in flight{}",
                part / MIB,
                if *multi_thread {
                    ", multi-threaded runtime"
                } else {
                    ""
                }
            ),
            Side::Aws { sha256: false, .. } => "`aws s3 cp` (defaults: CRC32)".into(),
            Side::Aws { sha256: true, .. } => "`aws s3 cp --checksum-algorithm SHA256`".into(),
        }
    }
}

/// One upload: wall seconds of the process, its CPU seconds (user + system) and peak
/// RSS, and the server's peak RSS (KiB).
struct Run {
    secs: f64,
    client: Usage,
    server_kib: Option<u64>,
}

/// What GNU time reports of a process.
#[derive(Clone, Copy, Default)]
struct Usage {
    cpu_secs: Option<f64>,
    peak_kib: Option<u64>,
}

fn main() {
    let size: u64 = env_parse("CUSTODY_BENCH_BYTES").unwrap_or(1 << 30);
    match std::env::var(ROLE).as_deref() {
        Ok("local") => return child_local(),
        Ok("hash") => {
            custody_evidence::sha256_reader(std::fs::File::open(material()).unwrap()).unwrap();
            return;
        }
        Ok("s3") => return child_s3(),
        _ => {}
    }
    let reps: usize = env_parse("CUSTODY_BENCH_REPS").unwrap_or(5).max(1);
    let dir = std::env::var_os("CUSTODY_BENCH_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-s3"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    let material = dir.join("material.bin");
    make_material(&material, size);

    let mut sides = vec![Side::Local];
    let moto = std::env::var_os("CUSTODY_MOTO").map(PathBuf::from);
    match &moto {
        Some(moto) => {
            let defaults = StoreOptions::default();
            for measured in [true, false] {
                sides.push(Side::Custody {
                    part: defaults.part_size,
                    concurrency: defaults.upload_concurrency,
                    multi_thread: false,
                    measured,
                });
            }
            sides.push(Side::Hash);
            match aws_cli(moto) {
                Some(aws) => {
                    eprintln!("{}", aws_version(&aws));
                    sides.push(Side::Aws {
                        aws: aws.clone(),
                        sha256: false,
                    });
                    sides.push(Side::Aws { aws, sha256: true });
                }
                None => eprintln!(
                    "`aws s3 cp` rows not run: set CUSTODY_AWS, or install awscli with \
                     `.venv/bin/pip install -r tests/bench-requirements.txt`"
                ),
            }
            for v in std::env::var("CUSTODY_BENCH_VARIANTS")
                .unwrap_or_default()
                .split(',')
                .filter(|v| !v.is_empty())
            {
                let (part, concurrency) = v
                    .split_once('x')
                    .expect("CUSTODY_BENCH_VARIANTS: <part MiB>x<in flight>,…");
                let (concurrency, multi_thread) = match concurrency.strip_suffix('m') {
                    Some(c) => (c, true),
                    None => (concurrency, false),
                };
                sides.push(Side::Custody {
                    part: part.parse::<u64>().unwrap() * MIB,
                    concurrency: concurrency.parse().unwrap(),
                    multi_thread,
                    measured: true,
                });
            }
        }
        None => eprintln!("S3 rows not run: set CUSTODY_MOTO to a moto_server"),
    }

    // read once, so every run starts from the same warm page cache
    std::io::copy(
        &mut std::fs::File::open(&material).unwrap(),
        &mut std::io::sink(),
    )
    .unwrap();
    let mut runs: Vec<Vec<Run>> = sides.iter().map(|_| Vec::new()).collect();
    for round in 0..reps {
        for (side, runs) in sides.iter().zip(runs.iter_mut()) {
            let run = run_side(side, &material, size, moto.as_deref(), round);
            eprintln!("round {}: {}: {:.2} s", round + 1, side.name(), run.secs);
            runs.push(run);
        }
    }
    let _ = std::fs::remove_file(&material);
    let _ = std::fs::remove_dir_all(dir.join("store"));

    let mib = size as f64 / MIB as f64;
    println!(
        "| upload of {} MiB ({reps} runs each, interleaved) | median | MiB/s | fastest–slowest | client CPU | client peak RSS | moto peak RSS |",
        size / MIB
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (side, runs) in sides.iter().zip(&runs) {
        let mut secs: Vec<f64> = runs.iter().map(|r| r.secs).collect();
        secs.sort_by(f64::total_cmp);
        let mid = median(&secs);
        let kib = |f: fn(&Run) -> Option<u64>| {
            let v: Vec<u64> = runs.iter().filter_map(f).collect();
            v.iter()
                .max()
                .map_or_else(|| "-".to_owned(), |k| format!("{} MiB", k / 1024))
        };
        let mut cpu: Vec<f64> = runs.iter().filter_map(|r| r.client.cpu_secs).collect();
        cpu.sort_by(f64::total_cmp);
        let cpu = if cpu.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.2} s", median(&cpu))
        };
        println!(
            "| {} | {mid:.2} s | {:.0} | {:.2}–{:.2} s | {cpu} | {} | {} |",
            side.name(),
            mib / mid,
            secs[0],
            secs[secs.len() - 1],
            kib(|r| r.client.peak_kib),
            kib(|r| r.server_kib),
        );
    }
}

fn env_parse<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// `CUSTODY_AWS`, else an `aws` next to the moto server (the same venv).
fn aws_cli(moto: &Path) -> Option<PathBuf> {
    if let Some(aws) = std::env::var_os("CUSTODY_AWS") {
        return Some(aws.into());
    }
    let aws = moto.with_file_name("aws");
    aws.exists().then_some(aws)
}

fn aws_version(aws: &Path) -> String {
    let out = aws_command(aws).arg("--version").output().unwrap();
    assert!(out.status.success(), "{} --version failed", aws.display());
    // awscli 1 prints its version on stderr, 2 on stdout
    let mut v = String::from_utf8_lossy(&out.stdout).into_owned();
    v.push_str(&String::from_utf8_lossy(&out.stderr));
    v.trim().to_owned()
}

/// `aws` with test keys and nothing from this machine's AWS configuration, so its
/// transfer settings are the defaults.
fn aws_command(aws: &Path) -> Command {
    let mut c = Command::new(aws);
    c.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/custody-bench")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/custody-bench");
    c
}

fn run_side(side: &Side, material: &Path, size: u64, moto: Option<&Path>, round: usize) -> Run {
    let child = |role: &str| {
        let mut c = Command::new(std::env::current_exe().unwrap());
        c.env(ROLE, role).env("CUSTODY_BENCH_MATERIAL", material);
        c
    };
    let (cmd, server, endpoint) = match (side, moto) {
        (Side::Local | Side::Hash, _) | (_, None) => {
            let role = if matches!(side, Side::Hash) {
                "hash"
            } else {
                "local"
            };
            let (secs, client) = timed(child(role));
            // the disk may be shared and small: one copy at a time
            let _ = std::fs::remove_dir_all(material.with_file_name("store"));
            return Run {
                secs,
                client,
                server_kib: None,
            };
        }
        (_, Some(moto)) => {
            let (server, endpoint) = start_moto(moto, size);
            (child("s3"), server, endpoint)
        }
    };
    let bucket = format!("bench-{round}");
    create_locked_bucket(&endpoint, &bucket);
    let c = match side {
        Side::Custody {
            part,
            concurrency,
            multi_thread,
            measured,
        } => {
            let mut c = cmd;
            if *multi_thread {
                c.env("CUSTODY_BENCH_MULTI_THREAD", "1");
            }
            if *measured {
                // hashed once here, outside the timing: the plan's digest
                let (digest, _) =
                    custody_evidence::sha256_reader(std::fs::File::open(material).unwrap())
                        .unwrap();
                c.env("CUSTODY_BENCH_DIGEST", digest.to_string());
            }
            c.env("CUSTODY_BENCH_ENDPOINT", &endpoint)
                .env("CUSTODY_BENCH_BUCKET", &bucket)
                .env("CUSTODY_BENCH_PART", part.to_string())
                .env("CUSTODY_BENCH_CONCURRENCY", concurrency.to_string());
            c
        }
        Side::Aws { aws, sha256 } => {
            // `aws s3 cp` sets no lock itself: the bucket's default retention locks
            // what it uploads, as Custody's objects are locked
            let status = aws_command(aws)
                .args(["s3api", "put-object-lock-configuration", "--bucket", &bucket])
                .args([
                    "--object-lock-configuration",
                    r#"{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"COMPLIANCE","Days":1}}}"#,
                ])
                .args(["--endpoint-url", &endpoint])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "put-object-lock-configuration failed");
            let mut c = aws_command(aws);
            c.args(["s3", "cp", "--no-progress"])
                .arg(material)
                .arg(format!("s3://{bucket}/material.bin"))
                .args(["--endpoint-url", &endpoint]);
            if *sha256 {
                c.args(["--checksum-algorithm", "SHA256"]);
            }
            c
        }
        Side::Local | Side::Hash => unreachable!("run without a server above"),
    };
    let (secs, client) = timed(c);
    let server_kib = hwm_kib(&format!("/proc/{}/status", server.0.id()));
    drop(server);
    Run {
        secs,
        client,
        server_kib,
    }
}

/// Runs `cmd` to completion (it must succeed): wall seconds from spawn to exit, and
/// its CPU time and peak RSS from GNU time when that is installed.
fn timed(cmd: Command) -> (f64, Usage) {
    const GNU_TIME: &str = "/usr/bin/time";
    let report_file =
        std::env::temp_dir().join(format!("custody-bench-rss-{}", std::process::id()));
    let mut c = if Path::new(GNU_TIME).exists() {
        let mut c = Command::new(GNU_TIME);
        c.args(["-f", "%U %S %M", "-o"]).arg(&report_file);
        c.arg(cmd.get_program()).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    } else {
        cmd
    };
    let t0 = Instant::now();
    let out = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        c.get_program(),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(&report_file).unwrap_or_default();
    let _ = std::fs::remove_file(&report_file);
    let mut fields = report
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned);
    let mut next = || fields.next().and_then(|f| f.parse::<f64>().ok());
    let (user, system, kib) = (next(), next(), next());
    let usage = Usage {
        cpu_secs: user.zip(system).map(|(u, s)| u + s),
        peak_kib: kib.map(|k| k as u64),
    };
    (secs, usage)
}

/// A moto server, stopped when dropped (also when an upload fails and the bench panics).
struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_moto(moto: &Path, size: u64) -> (Moto, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Command::new(moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", (size + MIB).to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Moto(server);
    wait_for(port);
    (server, format!("http://127.0.0.1:{port}"))
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
    let put = store
        .put_object_blocking(ObjectSource::File(&path), &retention)
        .unwrap();
    assert!(put.created);
}

/// One upload through the store on the runtime a step uses (single-threaded, unless
/// `CUSTODY_BENCH_MULTI_THREAD` is set).
fn child_s3() {
    let endpoint = std::env::var("CUSTODY_BENCH_ENDPOINT").unwrap();
    let bucket = std::env::var("CUSTODY_BENCH_BUCKET").unwrap();
    let path = material();
    let defaults = StoreOptions::default();
    let rt = if std::env::var_os("CUSTODY_BENCH_MULTI_THREAD").is_some() {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build()
    .unwrap();
    rt.block_on(async {
        let options = StoreOptions {
            endpoint_url: Some(endpoint),
            region: Some("us-east-1".into()),
            force_path_style: true,
            credentials: Some(StaticCredentials {
                access_key_id: "testing".into(),
                secret_access_key: "testing".into(),
                session_token: None,
            }),
            part_size: env_parse("CUSTODY_BENCH_PART").unwrap_or(defaults.part_size),
            upload_concurrency: env_parse("CUSTODY_BENCH_CONCURRENCY")
                .unwrap_or(defaults.upload_concurrency),
            ..defaults
        };
        let store = S3Store::new(&format!("s3://{bucket}/bench"), options).unwrap();
        let retention = Retention::hipaa_default().unwrap();
        let source = match std::env::var("CUSTODY_BENCH_DIGEST") {
            Ok(d) => ObjectSource::Measured {
                path: &path,
                digest: d.parse().unwrap(),
                size: std::fs::metadata(&path).unwrap().len(),
            },
            Err(_) => ObjectSource::File(&path),
        };
        let put = store.put_object(source, &retention).await.unwrap();
        assert!(put.created);
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

fn hwm_kib(status: &str) -> Option<u64> {
    std::fs::read_to_string(status)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
