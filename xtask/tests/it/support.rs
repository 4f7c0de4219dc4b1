//! What the CI-template tests share: the tools `cargo xtask test` installs (each behind
//! its own variable; a test without its tool says so and returns), the step binaries
//! (stripped copies of the debug builds, so serving and hashing them is quick), a
//! loopback file server standing in for the release download host, and a copy of this
//! repository as a published version of it.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

/// The tool named by `var`, or `None` after saying the test was not run.
pub fn tool(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => {
            eprintln!("{var} is not set: test not run (cargo xtask test sets it)");
            None
        }
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub const STEPS: [&str; 4] = ["evidence-upload", "policy-check", "runner-guard", "custody"];

/// Stripped copies of the step binaries in `CUSTODY_STEP_BINARIES`, made once per
/// test process under the target's tmp dir.
pub fn binaries() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let src = tool("CUSTODY_STEP_BINARIES")?;
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("step-binaries");
        std::fs::create_dir_all(&dir).unwrap();
        // and custody-gate, which `custody gate` runs from beside custody (the demo's
        // App path); not a release asset
        for step in STEPS.iter().chain(&["custody-gate"]) {
            let from = src.join(step);
            let to = dir.join(step);
            let _ = std::fs::remove_file(&to);
            if !from.is_file() {
                // the tests that need it fail on it (guard::is_built)
                continue;
            }
            let stripped = Command::new("strip")
                .arg("--strip-debug")
                .arg("-o")
                .arg(&to)
                .arg(&from)
                .status()
                .is_ok_and(|s| s.success());
            if !stripped {
                std::fs::copy(&from, &to).unwrap();
            }
        }
        Some(dir)
    })
    .as_deref()
}

pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A loopback HTTP server answering `GET /<name>` with the files of a directory, and
/// remembering every path asked for.
pub struct FileServer {
    pub base: String,
    pub hits: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FileServer {
    pub fn start(dir: &Path) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (dir, h, s) = (dir.to_path_buf(), hits.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    continue;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                h.lock().unwrap().push(path.clone());
                let file = dir.join(path.trim_start_matches('/'));
                let mut stream = stream;
                match std::fs::File::open(&file) {
                    Ok(mut f) if file.starts_with(&dir) && file.is_file() => {
                        let len = f.metadata().unwrap().len();
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                        );
                        let mut buf = vec![0u8; 1 << 20];
                        loop {
                            let n = f.read(&mut buf).unwrap();
                            if n == 0 || stream.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                    _ => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found"
                        );
                    }
                }
            }
        });
        FileServer { base, hits, stop }
    }

    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Lays out release assets (`<dir>/<step>-<target>`) for the host's target from the
/// step binaries, returning `step -> sha256`.
pub fn release_assets(dir: &Path) -> Vec<(&'static str, String)> {
    let bins = binaries().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    STEPS
        .iter()
        .filter(|step| bins.join(step).is_file())
        .map(|step| {
            let asset = dir.join(format!("{step}-{}", host_target()));
            std::fs::copy(bins.join(step), &asset).unwrap();
            (*step, sha256_file(&asset))
        })
        .collect()
}

pub fn host_target() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64-unknown-linux-musl",
        _ => "x86_64-unknown-linux-musl",
    }
}

/// A copy of the files of this repository that a release would hold (what git
/// tracks or would track), at `dest`.
pub fn published_copy(dest: &Path) {
    let root = root();
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "git ls-files failed");
    for rel in out.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).unwrap());
        let from = root.join(rel);
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        let to = dest.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
}

/// Writes `actions/<step>/manifest.json` of a published copy as a release would.
pub fn write_manifest(copy: &Path, step: &str, released: bool, sha256: Option<&str>) {
    let target = host_target();
    let other = if target.starts_with("x86_64") {
        "aarch64-unknown-linux-musl"
    } else {
        "x86_64-unknown-linux-musl"
    };
    let manifest = serde_json::json!({
        "version": "0.1.0",
        "released": released,
        "repository": "acme/custody",
        "assets": {
            target: {"name": format!("{step}-{target}"), "sha256": sha256},
            other: {"name": format!("{step}-{other}"), "sha256": null},
        }
    });
    let path = copy.join("actions").join(step).join("manifest.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
}

/// `git init` with an `origin` remote (gitlab-ci-local wants both), then a commit of
/// whatever changed; running it again on the same directory adds a commit only when
/// something changed.
pub fn git_repo(dir: &Path) {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .status()
            .unwrap()
    };
    if !dir.join(".git").exists() {
        assert!(git(&["init", "-q", "-b", "main"]).success());
        assert!(
            git(&[
                "remote",
                "add",
                "origin",
                "https://gitlab.example.com/acme/app.git"
            ])
            .success()
        );
    }
    assert!(git(&["add", "-A"]).success());
    let has_head = git(&["rev-parse", "-q", "--verify", "HEAD"]).success();
    let staged = !git(&["diff", "--cached", "--quiet"]).success();
    if staged || !has_head {
        let st = git(&[
            "-c",
            "user.name=Custody Test",
            "-c",
            "user.email=test@custody.invalid",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "test pipeline",
        ]);
        assert!(st.success(), "git commit failed in {}", dir.display());
    }
}

pub fn head_commit(dir: &Path) -> String {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs a command, returning its output with stdout and stderr together for messages.
pub fn run(cmd: &mut Command) -> (Output, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// A fresh signing key pair (`dir/ci.key`, `dir/ci.key.pub`) from `custody keygen`.
pub fn keygen(dir: &Path) -> PathBuf {
    let key = dir.join("ci.key");
    let (out, text) = run(Command::new(binaries().unwrap().join("custody"))
        .args(["keygen", "--out"])
        .arg(&key));
    assert!(out.status.success(), "custody keygen failed: {text}");
    key
}

/// `custody query --store URL --commit C --format json`, parsed.
pub fn query_commit(store: &str, commit: &str) -> Vec<serde_json::Value> {
    let (out, text) = run(Command::new(binaries().unwrap().join("custody")).args([
        "query", "--store", store, "--commit", commit, "--format", "json",
    ]));
    assert!(out.status.success(), "custody query failed: {text}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    match v {
        serde_json::Value::Array(a) => a,
        other => other
            .get("records")
            .and_then(|r| r.as_array())
            .cloned()
            .unwrap_or_else(|| panic!("unexpected query output: {other}")),
    }
}

/// `custody verify --store URL --record D --key PUB` succeeds.
pub fn verify_record(store: &str, record: &str, public_key: &Path) {
    let (out, text) = run(Command::new(binaries().unwrap().join("custody"))
        .args(["verify", "--store", store, "--record", record, "--key"])
        .arg(public_key));
    assert!(
        out.status.success(),
        "custody verify {record} failed: {text}"
    );
}

/// A path as a `file://` store URL.
pub fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Every ref (`@REF`) by which the workflows, actions and README of a copy of Custody
/// call Custody itself (`custody-dev/custody/...@REF`), so `act --local-repository` can
/// map each to that copy.
pub fn custody_refs(copy: &Path) -> Vec<String> {
    let mut refs = std::collections::BTreeSet::new();
    let mut files = vec![copy.join("README.md")];
    for dir in [".github/workflows", "actions"] {
        let mut stack = vec![copy.join(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                    files.push(p);
                }
            }
        }
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (i, _) in text.match_indices("custody-dev/custody/") {
            let rest = &text[i..];
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '`')
                .unwrap_or(rest.len());
            if let Some((_, reference)) = rest[..end].split_once('@')
                && !reference.is_empty()
            {
                refs.insert(reference.to_string());
            }
        }
    }
    refs.into_iter().collect()
}

/// The `actions/cache` step of every action (its SHA pin, read from the actions).
pub fn cache_action_ref() -> String {
    let text = std::fs::read_to_string(root().join("actions/runner-guard/action.yml")).unwrap();
    let at = text.find("uses: actions/cache@").expect("the cache step") + "uses: ".len();
    text[at..].split_whitespace().next().unwrap().to_string()
}

/// `act` arguments mapping `actions/cache` to a stand-in under `dir`. act resolves every
/// action a composite names before it runs, even a step whose `if:` is false, and would
/// fetch actions/cache from GitHub; the cache step is skipped under act (`ACT=true`: no
/// cache service offline), so the stand-in is parsed and never run — and fails the job
/// if it ever is.
pub fn act_cache_standin(dir: &Path) -> Vec<String> {
    let action = dir.join("actions-cache-standin");
    std::fs::create_dir_all(&action).unwrap();
    std::fs::write(
        action.join("action.yml"),
        "name: actions/cache stand-in\ndescription: parsed by act, never run\ninputs:\n  path:\n    description: p\n  key:\n    description: k\nruns:\n  using: composite\n  steps:\n    - shell: bash\n      run: |\n        echo 'the actions/cache stand-in ran, the cache step must be skipped under act' >&2\n        exit 1\n",
    )
    .unwrap();
    vec![
        "--local-repository".into(),
        format!("{}={}", cache_action_ref(), action.display()),
    ]
}
