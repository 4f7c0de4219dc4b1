//! `cargo xtask bench`: whole-process comparisons, side by side in one run, plus the
//! crates' own benchmark binaries. Prints Markdown tables; BENCHMARKS.md records them
//! with the machine they ran on.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Context as _;

use crate::util::{self, cargo};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Size of the file hashed, in MiB.
    #[arg(long, default_value_t = 1024)]
    hash_mib: u64,
    /// Skip the store query benchmark (it builds stores of 10k and 100k records once).
    #[arg(long)]
    no_store: bool,
    /// Only policy-check: evaluation (criterion) and the whole process against regopy.
    #[arg(long)]
    policy: bool,
    /// Run only the runner-guard benchmark (the whole local check as a process).
    #[arg(long)]
    guard_only: bool,
    /// Runs per command in the runner-guard benchmark.
    #[arg(long, default_value_t = 200)]
    guard_runs: usize,
    /// Only the S3 upload: Custody's multipart upload against `aws s3 cp` on a loopback
    /// moto server (installs tests/bench-requirements.txt into .venv).
    #[arg(long)]
    s3: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    if args.policy {
        return policy();
    }
    if args.s3 {
        return s3();
    }
    util::run(cargo().args(["build", "--release", "--locked", "-p", "runner-guard"]))?;
    guard(args.guard_runs)?;
    if args.guard_only {
        return Ok(());
    }
    util::run(cargo().args(["build", "--release", "--locked", "-p", "custody"]))?;
    hash(args.hash_mib)?;
    util::run(cargo().args([
        "bench",
        "--locked",
        "-p",
        "custody-evidence",
        "--bench",
        "crypto",
    ]))?;
    if !args.no_store {
        util::run(cargo().args([
            "bench",
            "--locked",
            "-p",
            "custody-audit",
            "--bench",
            "query",
        ]))?;
    }
    Ok(())
}

/// Where cargo puts binaries: `CARGO_TARGET_DIR` when set (helpers and CI use their own).
fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| "target".into(), Into::into)
}

/// Writes `mib` MiB of pseudo-random bytes once (xorshift, so it is not all zeros).
fn make_file(path: &Path, mib: u64) -> anyhow::Result<()> {
    if path.metadata().is_ok_and(|m| m.len() == mib << 20) {
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().context("bench dir")?)?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for chunk in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&block)?;
    }
    f.flush()?;
    Ok(())
}

/// Best wall time of three runs and the peak RSS (KiB) reported by GNU time, if present.
fn measure(cmd: &[&str]) -> anyhow::Result<(f64, Option<u64>)> {
    let gnu_time = Path::new("/usr/bin/time").exists();
    let mut best = f64::MAX;
    let mut rss = None;
    for _ in 0..3 {
        let mut c = if gnu_time {
            let mut c = Command::new("/usr/bin/time");
            c.args(["-f", "%M"]).args(cmd);
            c
        } else {
            let mut c = Command::new(cmd[0]);
            c.args(&cmd[1..]);
            c
        };
        let t = Instant::now();
        let out = c.output().with_context(|| format!("running {cmd:?}"))?;
        let secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(
            out.status.success(),
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        best = best.min(secs);
        if gnu_time {
            rss = String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .and_then(|l| l.trim().parse().ok());
        }
    }
    Ok((best, rss))
}

/// Wall time of `runs` executions of each command, interleaved so both see the same machine
/// load: (median, 95th percentile, min) in milliseconds. Any exit code counts: a verdict of
/// "fail" or "untrusted" is as much work as a pass.
fn wall_ms(cmds: &[Vec<String>], runs: usize) -> anyhow::Result<Vec<(f64, f64, f64)>> {
    let mut times = vec![Vec::with_capacity(runs); cmds.len()];
    for _ in 0..runs {
        for (cmd, t) in cmds.iter().zip(times.iter_mut()) {
            let (prog, rest) = cmd.split_first().context("empty command")?;
            let start = Instant::now();
            let out = Command::new(prog)
                .args(rest)
                .env_clear()
                .env("HOME", std::env::var("HOME").unwrap_or_default())
                .output()
                .with_context(|| format!("running {cmd:?}"))?;
            t.push(start.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(
                out.status.code().is_some_and(|c| [0, 1, 3].contains(&c)),
                "{cmd:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(times
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            let at = |q: f64| t[((t.len() - 1) as f64 * q).round() as usize];
            (at(0.5), at(0.95), t[0])
        })
        .collect())
}

/// Peak RSS (KiB) of one run, from GNU time, if present.
fn peak_rss(cmd: &[String]) -> Option<u64> {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .args(cmd)
        .env_clear()
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
}

/// The whole local check of runner-guard as a process, against `true` as the floor: load and
/// validate the example tier model, read `/proc/self/status`, look for runtime sockets and
/// credential files, probe the metadata endpoint (a closed port on loopback: no traffic leaves
/// the machine), find no OIDC token (no CI variables), judge and print the JSON verdict.
fn guard(runs: usize) -> anyhow::Result<()> {
    let bin = std::fs::canonicalize(target_dir().join("release/runner-guard"))?;
    let model = std::fs::canonicalize("crates/custody-guard/examples/tiers.yaml")?;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?
    };
    let guard = |extra: &[&str]| -> Vec<String> {
        let mut v = vec![
            bin.display().to_string(),
            "--tier-model".into(),
            model.display().to_string(),
            "--platform".into(),
            "github".into(),
            "--metadata-endpoint".into(),
            closed.to_string(),
            "--format".into(),
            "json".into(),
        ];
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    };
    let rows = [
        (
            "`runner-guard --tier development` (pass)",
            guard(&["--tier", "development"]),
        ),
        (
            "`runner-guard --environment production` (untrusted: no token)",
            guard(&["--environment", "production"]),
        ),
        ("`true` (process floor)", vec!["true".to_owned()]),
    ];
    let cmds: Vec<Vec<String>> = rows.iter().map(|(_, c)| c.clone()).collect();
    // Warm the page cache before measuring.
    wall_ms(&cmds, 3)?;
    let stats = wall_ms(&cmds, runs)?;
    println!(
        "| command ({runs} runs, interleaved) | median wall | p95 wall | min wall | peak RSS |"
    );
    println!("|---|---|---|---|---|");
    for ((name, cmd), (median, p95, min)) in rows.iter().zip(stats) {
        let rss =
            peak_rss(cmd).map_or_else(|| "-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        println!("| {name} | {median:.2} ms | {p95:.2} ms | {min:.2} ms | {rss} |");
    }
    Ok(())
}

fn hash(mib: u64) -> anyhow::Result<()> {
    let file = Path::new("target/bench/hash-input.bin");
    make_file(file, mib)?;
    let f = file.to_str().context("path")?;
    // read once so both tools start from a warm page cache
    measure(&["cat", f])?;
    let custody = std::fs::canonicalize(target_dir().join("release/custody"))?;
    let custody = custody.to_str().context("path")?;
    let (c_secs, c_rss) = measure(&[custody, "digest", f])?;
    let (o_secs, o_rss) = measure(&["openssl", "dgst", "-sha256", f])?;
    let (s_secs, s_rss) = measure(&["sha256sum", f])?;
    let kib =
        |r: Option<u64>| r.map_or_else(|| "-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    println!(
        "| SHA-256 of a {mib} MiB file (warm cache, best of 3) | seconds | MiB/s | peak RSS | vs openssl |"
    );
    println!("|---|---|---|---|---|");
    for (name, secs, rss) in [
        ("custody digest", c_secs, c_rss),
        ("openssl dgst -sha256", o_secs, o_rss),
        ("sha256sum", s_secs, s_rss),
    ] {
        println!(
            "| {name} | {secs:.3} | {:.0} | {} | {:.2} |",
            mib as f64 / secs,
            kib(rss),
            o_secs / secs
        );
    }
    Ok(())
}

/// A 1 GiB material into S3 (issue 18): Custody's `S3Store` and `aws s3 cp` of the same
/// file to Object Lock buckets on moto, on loopback, interleaved; the bench prints the
/// table. awscli is a benchmark tool only, so `cargo xtask test` does not install it.
fn s3() -> anyhow::Result<()> {
    let python = crate::test::venv()?;
    crate::test::pip_install(&python, Path::new("tests/bench-requirements.txt"))?;
    let moto = crate::test::moto_server()?;
    let aws = std::path::absolute(".venv/bin/aws")?;
    util::run(
        cargo()
            .args(["bench", "--locked", "-p", "custody-store", "--bench", "s3"])
            .env("CUSTODY_MOTO", moto)
            .env("CUSTODY_AWS", aws)
            .env("AWS_EC2_METADATA_DISABLED", "true"),
    )
}

/// policy-check: criterion evaluation of the built-in policies on 5,000 components and
/// 10,000 findings, then the whole `policy-check --input` process against regopy
/// (rego-cpp) evaluating the same .rego files, data and input.
fn policy() -> anyhow::Result<()> {
    let dir = Path::new("target/bench/policy");
    util::run(cargo().args(["build", "--release", "--locked", "-p", "policy-check"]))?;
    util::run(
        cargo()
            .args([
                "bench",
                "--locked",
                "-p",
                "custody-policy",
                "--bench",
                "evaluate",
            ])
            .env("CUSTODY_BENCH_WRITE", std::path::absolute(dir)?),
    )?;
    let python = crate::test::venv()?;
    let input = dir.join("input.json");
    let data = dir.join("data.json");
    let config = dir.join("data-config.json");
    let s = |p: &Path| p.to_str().map(str::to_owned).context("path");
    let pc = std::fs::canonicalize("target/release/policy-check")?;
    let digest = format!("sha256:{}", "1".repeat(64));
    let ours = [
        s(&pc)?,
        "--gate".into(),
        "pre-deploy".into(),
        "--subject".into(),
        digest,
        "--no-record".into(),
        "--input".into(),
        s(&input)?,
        "--data".into(),
        s(&config)?,
    ];
    let theirs = [
        python,
        "tests/interop/regopy_check.py".into(),
        "crates/custody-policy/policies".into(),
        s(&data)?,
        s(&input)?,
    ];
    let ours: Vec<&str> = ours.iter().map(String::as_str).collect();
    let theirs: Vec<&str> = theirs.iter().map(String::as_str).collect();
    let (o_secs, o_rss) = measure(&ours)?;
    let (t_secs, t_rss) = measure(&theirs)?;
    let size = std::fs::metadata(&input)?.len();
    let kib =
        |r: Option<u64>| r.map_or_else(|| "-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    println!(
        "| whole process, built-in policies, input of {:.1} MiB (5,000 components, 10,000 findings), best of 3 | seconds | peak RSS |",
        size as f64 / 1048576.0
    );
    println!("|---|---|---|");
    println!(
        "| policy-check --input (regorus) | {o_secs:.3} | {} |",
        kib(o_rss)
    );
    println!(
        "| regopy_check.py (rego-cpp via regopy) | {t_secs:.3} | {} |",
        kib(t_rss)
    );
    Ok(())
}
