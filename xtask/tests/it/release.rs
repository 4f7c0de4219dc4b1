//! `cargo xtask release` end to end: the real xtask binary on a git copy of this
//! repository, with small fake assets (`--assets`), against loopback servers that
//! answer like GitHub's REST API (releases and release assets, uploads on the same
//! host) and GitLab's API v4 (generic packages, package files, releases and links) and
//! keep state, so each test asserts what a maintainer would find afterwards. Response
//! bodies come from `xtask/tests/data/release/` (documented examples; see its README).

use std::collections::BTreeMap;
use std::io::{BufReader, Read as _, Write as _};

use custody_test_support::http::{Recorded, read_head};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::support;

const GITHUB_TOKEN: &str = "ghp_SENTINEL_github_token_0123456789";
const GITLAB_TOKEN: &str = "glpat-SENTINEL-gitlab-token-98765";
const OWNER_REPO: &str = "acme/custody";
const PROJECT: &str = "acme/custody";
const PROJECT_ESCAPED: &str = "acme%2Fcustody";
const VERSION: &str = "0.2.0";
const TAG: &str = "v0.2.0";
const BINARIES: [&str; 4] = ["custody", "evidence-upload", "policy-check", "runner-guard"];
const TARGETS: [&str; 2] = ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"];

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/release")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---------------------------------------------------------------------------------
// a loopback HTTP/1.1 server: one thread per connection, one request per connection

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

struct Reply {
    status: u16,
    body: Vec<u8>,
}

fn reply(status: u16, body: &Value) -> Reply {
    Reply {
        status,
        body: serde_json::to_vec(body).unwrap(),
    }
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

fn serve(handler: Handler) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    assert!(addr.ip().is_loopback());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let handler = Arc::clone(&handler);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let Some(head) = read_head(&mut reader) else {
                    return;
                };
                let Recorded {
                    method,
                    target,
                    headers,
                    ..
                } = head;
                let mut body = Vec::new();
                if let Some(n) = headers.get("content-length") {
                    body = vec![0; n.parse().unwrap()];
                    reader.read_exact(&mut body).unwrap();
                } else {
                    assert_ne!(
                        headers.get("transfer-encoding").map(String::as_str),
                        Some("chunked"),
                        "the mock expects Content-Length bodies"
                    );
                }
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let query = url::form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect();
                let req = Request {
                    method,
                    path: path.to_owned(),
                    query,
                    headers,
                    body,
                };
                let r = handler(&req);
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {} X\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    r.status,
                    r.body.len()
                );
                let _ = stream.write_all(&r.body);
            });
        }
    });
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------
// GitHub: releases and release assets, with state

#[derive(Debug, Clone)]
struct GhAsset {
    id: u64,
    name: String,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
struct GhRelease {
    id: u64,
    tag: String,
    commitish: String,
    name: String,
    body: String,
    draft: bool,
    assets: Vec<GhAsset>,
}

#[derive(Default)]
struct GhState {
    base: String,
    next_id: u64,
    releases: Vec<GhRelease>,
    /// "METHOD /path" of every request.
    requests: Vec<String>,
    authorization: Vec<String>,
    /// Refuse the upload of this asset once.
    fail_upload_once: Option<String>,
}

struct GitHub {
    url: String,
    state: Arc<Mutex<GhState>>,
}

impl GitHub {
    fn start() -> GitHub {
        let state = Arc::new(Mutex::new(GhState::default()));
        let s = Arc::clone(&state);
        let url = serve(Arc::new(move |req| github(&s, req)));
        state.lock().unwrap().base = url.clone();
        GitHub { url, state }
    }
    fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
    fn releases(&self) -> Vec<GhRelease> {
        self.state.lock().unwrap().releases.clone()
    }
}

fn gh_asset_json(base: &str, a: &GhAsset) -> Value {
    let mut v = fixture("github/asset.json");
    v["url"] = json!(format!(
        "{base}/repos/{OWNER_REPO}/releases/assets/{}",
        a.id
    ));
    v["browser_download_url"] = json!(format!(
        "https://github.com/{OWNER_REPO}/releases/download/{TAG}/{}",
        a.name
    ));
    v["id"] = json!(a.id);
    v["name"] = json!(a.name);
    v["label"] = json!("");
    v["content_type"] = json!("application/octet-stream");
    v["size"] = json!(a.bytes.len());
    v["digest"] = json!(format!("sha256:{}", sha256_hex(&a.bytes)));
    v["download_count"] = json!(0);
    v
}

fn gh_release_json(base: &str, r: &GhRelease) -> Value {
    let mut v = fixture("github/release.json");
    let api = format!("{base}/repos/{OWNER_REPO}/releases/{}", r.id);
    v["url"] = json!(api);
    v["html_url"] = json!(format!(
        "https://github.com/{OWNER_REPO}/releases/tag/{}",
        r.tag
    ));
    v["assets_url"] = json!(format!("{api}/assets"));
    // uploads go to the same loopback server (uploads.github.com on github.com)
    v["upload_url"] = json!(format!("{api}/assets{{?name,label}}"));
    v["id"] = json!(r.id);
    v["tag_name"] = json!(r.tag);
    v["target_commitish"] = json!(r.commitish);
    v["name"] = json!(r.name);
    v["body"] = json!(r.body);
    v["draft"] = json!(r.draft);
    if r.draft {
        v["published_at"] = Value::Null;
    }
    v["assets"] = Value::Array(r.assets.iter().map(|a| gh_asset_json(base, a)).collect());
    v
}

fn not_found() -> Reply {
    reply(404, &fixture("github/not-found.json"))
}

fn github(state: &Mutex<GhState>, req: &Request) -> Reply {
    let mut s = state.lock().unwrap();
    s.requests.push(format!("{} {}", req.method, req.path));
    s.authorization.push(
        req.headers
            .get("authorization")
            .cloned()
            .unwrap_or_default(),
    );
    let base = s.base.clone();
    let Some(rest) = req
        .path
        .strip_prefix(&format!("/repos/{OWNER_REPO}/releases"))
    else {
        return not_found();
    };
    let segs: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match (req.method.as_str(), segs.as_slice()) {
        // "Get a release by tag name": published releases only
        ("GET", ["tags", tag]) => match s.releases.iter().find(|r| r.tag == *tag && !r.draft) {
            Some(r) => reply(200, &gh_release_json(&base, r)),
            None => not_found(),
        },
        // "List releases": drafts too (the caller has push access)
        ("GET", []) => reply(
            200,
            &Value::Array(
                s.releases
                    .iter()
                    .map(|r| gh_release_json(&base, r))
                    .collect(),
            ),
        ),
        ("POST", []) => {
            let b: Value = serde_json::from_slice(&req.body).unwrap();
            let tag = b["tag_name"].as_str().unwrap().to_owned();
            if s.releases.iter().any(|r| r.tag == tag) {
                return reply(
                    422,
                    &json!({"message": "Validation Failed", "errors": [{"resource": "Release", "code": "already_exists", "field": "tag_name"}], "documentation_url": "https://docs.github.com/rest/releases/releases#create-a-release", "status": "422"}),
                );
            }
            s.next_id += 1;
            let r = GhRelease {
                id: s.next_id,
                tag,
                commitish: b["target_commitish"].as_str().unwrap_or("main").to_owned(),
                name: b["name"].as_str().unwrap_or_default().to_owned(),
                body: b["body"].as_str().unwrap_or_default().to_owned(),
                draft: b["draft"].as_bool().unwrap_or(false),
                assets: Vec::new(),
            };
            let v = gh_release_json(&base, &r);
            s.releases.push(r);
            reply(201, &v)
        }
        ("GET", [id]) => match s.releases.iter().find(|r| r.id.to_string() == *id) {
            Some(r) => reply(200, &gh_release_json(&base, r)),
            None => not_found(),
        },
        ("PATCH", [id]) => {
            let b: Value = serde_json::from_slice(&req.body).unwrap();
            let Some(r) = s.releases.iter_mut().find(|r| r.id.to_string() == *id) else {
                return not_found();
            };
            if let Some(d) = b["draft"].as_bool() {
                r.draft = d;
            }
            if let Some(c) = b["target_commitish"].as_str() {
                r.commitish = c.to_owned();
            }
            if let Some(n) = b["name"].as_str() {
                r.name = n.to_owned();
            }
            if let Some(body) = b["body"].as_str() {
                r.body = body.to_owned();
            }
            let r = r.clone();
            reply(200, &gh_release_json(&base, &r))
        }
        ("GET", [id, "assets"]) => match s.releases.iter().find(|r| r.id.to_string() == *id) {
            Some(r) => reply(
                200,
                &Value::Array(r.assets.iter().map(|a| gh_asset_json(&base, a)).collect()),
            ),
            None => not_found(),
        },
        // "Upload a release asset" (the upload host)
        ("POST", [id, "assets"]) => {
            let name = req.query.get("name").cloned().unwrap_or_default();
            assert_eq!(
                req.headers.get("content-type").map(String::as_str),
                Some("application/octet-stream")
            );
            if s.fail_upload_once.as_deref() == Some(name.as_str()) {
                s.fail_upload_once = None;
                return reply(
                    500,
                    &json!({"message": "Server Error", "documentation_url": "https://docs.github.com/rest/releases/assets#upload-a-release-asset", "status": "500"}),
                );
            }
            s.next_id += 1;
            let asset_id = s.next_id;
            let Some(r) = s.releases.iter_mut().find(|r| r.id.to_string() == *id) else {
                return not_found();
            };
            if r.assets.iter().any(|a| a.name == name) {
                return reply(
                    422,
                    &json!({"message": "Validation Failed", "errors": [{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}], "status": "422"}),
                );
            }
            let a = GhAsset {
                id: asset_id,
                name,
                bytes: req.body.clone(),
            };
            r.assets.push(a.clone());
            reply(201, &gh_asset_json(&base, &a))
        }
        ("DELETE", ["assets", id]) => {
            for r in &mut s.releases {
                if let Some(i) = r.assets.iter().position(|a| a.id.to_string() == *id) {
                    r.assets.remove(i);
                    return Reply {
                        status: 204,
                        body: Vec::new(),
                    };
                }
            }
            not_found()
        }
        _ => not_found(),
    }
}

// ---------------------------------------------------------------------------------
// GitLab: generic packages, package files, releases and links, with state

#[derive(Debug, Clone)]
struct GlFile {
    id: u64,
    name: String,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
struct GlPackage {
    id: u64,
    name: String,
    version: String,
    files: Vec<GlFile>,
}

#[derive(Debug, Clone)]
struct GlLink {
    id: u64,
    name: String,
    url: String,
    link_type: String,
}

#[derive(Debug, Clone)]
struct GlRelease {
    tag: String,
    name: String,
    description: String,
    git_ref: String,
    links: Vec<GlLink>,
}

#[derive(Default)]
struct GlState {
    next_id: u64,
    packages: Vec<GlPackage>,
    releases: Vec<GlRelease>,
    requests: Vec<String>,
    tokens: Vec<String>,
}

struct GitLab {
    url: String,
    state: Arc<Mutex<GlState>>,
}

impl GitLab {
    fn start() -> GitLab {
        let state = Arc::new(Mutex::new(GlState::default()));
        let s = Arc::clone(&state);
        let url = serve(Arc::new(move |req| gitlab(&s, req)));
        GitLab {
            url: format!("{url}/api/v4"),
            state,
        }
    }
    fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn gl_link_json(l: &GlLink) -> Value {
    let mut v = fixture("gitlab/link.json");
    v["id"] = json!(l.id);
    v["name"] = json!(l.name);
    v["url"] = json!(l.url);
    v["direct_asset_url"] = json!(l.url);
    v["link_type"] = json!(l.link_type);
    v
}

fn gl_release_json(r: &GlRelease) -> Value {
    let mut v = fixture("gitlab/release.json");
    v["tag_name"] = json!(r.tag);
    v["name"] = json!(r.name);
    v["description"] = json!(r.description);
    v["commit"]["id"] = json!(r.git_ref);
    v["assets"]["links"] = Value::Array(r.links.iter().map(gl_link_json).collect());
    v["assets"]["count"] = json!(r.links.len() + 2);
    v
}

fn gl_not_found() -> Reply {
    reply(404, &json!({"message": "404 Not Found"}))
}

fn gitlab(state: &Mutex<GlState>, req: &Request) -> Reply {
    let mut s = state.lock().unwrap();
    s.requests.push(format!("{} {}", req.method, req.path));
    s.tokens.push(
        req.headers
            .get("private-token")
            .cloned()
            .unwrap_or_default(),
    );
    let Some(rest) = req
        .path
        .strip_prefix(&format!("/api/v4/projects/{PROJECT_ESCAPED}/"))
    else {
        return gl_not_found();
    };
    let segs: Vec<&str> = rest.split('/').collect();
    match (req.method.as_str(), segs.as_slice()) {
        ("GET", ["packages"]) => {
            let name = req.query.get("package_name").cloned().unwrap_or_default();
            let version = req.query.get("package_version").cloned();
            let list: Vec<Value> = s
                .packages
                .iter()
                .filter(|p| {
                    p.name.contains(&name) && version.as_ref().is_none_or(|v| *v == p.version)
                })
                .map(|p| {
                    let mut v = fixture("gitlab/package.json");
                    v["id"] = json!(p.id);
                    v["name"] = json!(p.name);
                    v["version"] = json!(p.version);
                    v["package_type"] = json!("generic");
                    v
                })
                .collect();
            reply(200, &Value::Array(list))
        }
        ("GET", ["packages", id, "package_files"]) => {
            let Some(p) = s.packages.iter().find(|p| p.id.to_string() == *id) else {
                return gl_not_found();
            };
            let list: Vec<Value> = p
                .files
                .iter()
                .map(|f| {
                    let mut v = fixture("gitlab/package-file.json");
                    v["id"] = json!(f.id);
                    v["package_id"] = json!(p.id);
                    v["file_name"] = json!(f.name);
                    v["size"] = json!(f.bytes.len());
                    v["file_sha256"] = json!(sha256_hex(&f.bytes));
                    v
                })
                .collect();
            reply(200, &Value::Array(list))
        }
        // "Publish a package file": a second file of the same name is added, not replaced
        ("PUT", ["packages", "generic", name, version, file]) => {
            s.next_id += 1;
            let id = s.next_id;
            let file = GlFile {
                id,
                name: (*file).to_owned(),
                bytes: req.body.clone(),
            };
            match s
                .packages
                .iter_mut()
                .find(|p| p.name == *name && p.version == *version)
            {
                Some(p) => p.files.push(file),
                None => {
                    s.next_id += 1;
                    let pid = s.next_id;
                    s.packages.push(GlPackage {
                        id: pid,
                        name: (*name).to_owned(),
                        version: (*version).to_owned(),
                        files: vec![file],
                    });
                }
            }
            reply(201, &fixture("gitlab/generic-upload.json"))
        }
        ("GET", ["releases", tag]) => match s.releases.iter().find(|r| r.tag == *tag) {
            Some(r) => reply(200, &gl_release_json(r)),
            None => gl_not_found(),
        },
        ("POST", ["releases"]) => {
            let b: Value = serde_json::from_slice(&req.body).unwrap();
            let tag = b["tag_name"].as_str().unwrap().to_owned();
            if s.releases.iter().any(|r| r.tag == tag) {
                return reply(409, &json!({"message": "Release already exists"}));
            }
            let mut links = Vec::new();
            for l in b["assets"]["links"].as_array().cloned().unwrap_or_default() {
                s.next_id += 1;
                links.push(GlLink {
                    id: s.next_id,
                    name: l["name"].as_str().unwrap().to_owned(),
                    url: l["url"].as_str().unwrap().to_owned(),
                    link_type: l["link_type"].as_str().unwrap_or("other").to_owned(),
                });
            }
            let r = GlRelease {
                tag,
                name: b["name"].as_str().unwrap_or_default().to_owned(),
                description: b["description"].as_str().unwrap_or_default().to_owned(),
                git_ref: b["ref"].as_str().unwrap_or_default().to_owned(),
                links,
            };
            let v = gl_release_json(&r);
            s.releases.push(r);
            reply(201, &v)
        }
        ("GET", ["releases", tag, "assets", "links"]) => {
            match s.releases.iter().find(|r| r.tag == *tag) {
                Some(r) => reply(
                    200,
                    &Value::Array(r.links.iter().map(gl_link_json).collect()),
                ),
                None => gl_not_found(),
            }
        }
        ("POST", ["releases", tag, "assets", "links"]) => {
            let form: BTreeMap<String, String> = url::form_urlencoded::parse(&req.body)
                .into_owned()
                .collect();
            s.next_id += 1;
            let id = s.next_id;
            let Some(r) = s.releases.iter_mut().find(|r| r.tag == *tag) else {
                return gl_not_found();
            };
            let name = form.get("name").cloned().unwrap_or_default();
            if r.links.iter().any(|l| l.name == name) {
                return reply(
                    400,
                    &json!({"message": {"name": ["has already been taken"]}}),
                );
            }
            let l = GlLink {
                id,
                name,
                url: form.get("url").cloned().unwrap_or_default(),
                link_type: form.get("link_type").cloned().unwrap_or("other".into()),
            };
            r.links.push(l.clone());
            reply(201, &gl_link_json(&l))
        }
        _ => gl_not_found(),
    }
}

// ---------------------------------------------------------------------------------
// the repository copy, the assets and the command

struct Setup {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    remote: PathBuf,
    assets: PathBuf,
    github: GitHub,
    gitlab: GitLab,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_cmd(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn git_cmd(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Release Test")
        .env("GIT_AUTHOR_EMAIL", "release@custody.invalid")
        .env("GIT_COMMITTER_NAME", "Release Test")
        .env("GIT_COMMITTER_EMAIL", "release@custody.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    c
}

/// A git repository holding this workspace's files (one commit on `main`), fake
/// assets with a matching SHA256SUMS, and fresh mock servers.
fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    support::published_copy(&repo);
    pin_workspace_version(&repo, "0.1.0");
    // an entry to release even when this checkout's Unreleased section is empty
    let changelog = std::fs::read_to_string(repo.join("CHANGELOG.md")).unwrap();
    std::fs::write(
        repo.join("CHANGELOG.md"),
        changelog.replacen(
            "## [Unreleased]\n",
            "## [Unreleased]\n\n### Added\n- What this test release adds.\n",
            1,
        ),
    )
    .unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "before the release"]);
    // where `--push origin` goes
    let remote = tmp.path().join("remote.git");
    git(
        tmp.path(),
        &["init", "-q", "--bare", "-b", "main", "remote.git"],
    );
    git(
        &repo,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    let assets = tmp.path().join("dist");
    std::fs::create_dir_all(&assets).unwrap();
    let mut sums = Vec::new();
    for b in BINARIES {
        for t in TARGETS {
            let name = format!("{b}-{t}");
            let bytes = format!("#!fake {name} binary\n").repeat(50).into_bytes();
            std::fs::write(assets.join(&name), &bytes).unwrap();
            sums.push(format!("{}  {name}\n", sha256_hex(&bytes)));
        }
    }
    sums.sort_by(|a, b| a[66..].cmp(&b[66..]));
    std::fs::write(assets.join("SHA256SUMS"), sums.concat()).unwrap();
    std::fs::write(
        assets.join("provenance.intoto.jsonl"),
        b"{\"payloadType\":\"application/vnd.in-toto+json\"}\n",
    )
    .unwrap();
    std::fs::write(
        assets.join("provenance.key.pub"),
        b"-----BEGIN PUBLIC KEY-----\nfake\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    // never published
    std::fs::write(assets.join("provenance.key"), b"PRIVATE KEY MATERIAL").unwrap();
    Setup {
        _tmp: tmp,
        repo,
        remote,
        assets,
        github: GitHub::start(),
        gitlab: GitLab::start(),
    }
}

/// Sets the copy's workspace version to `to` (in Cargo.toml and the members' Cargo.lock
/// entries), so the tests release 0.2.0 whatever version this checkout is at.
fn pin_workspace_version(repo: &Path, to: &str) {
    let toml = std::fs::read_to_string(repo.join("Cargo.toml")).unwrap();
    let needle = "[workspace.package]\nversion = \"";
    let at = toml.find(needle).unwrap() + needle.len();
    let end = at + toml[at..].find('"').unwrap();
    let from = toml[at..end].to_owned();
    if from == to {
        return;
    }
    std::fs::write(
        repo.join("Cargo.toml"),
        format!("{}{to}{}", &toml[..at], &toml[end..]),
    )
    .unwrap();
    let mut lock = std::fs::read_to_string(repo.join("Cargo.lock")).unwrap();
    let mut members: Vec<String> = std::fs::read_dir(repo.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    members.push("xtask".into());
    for m in members {
        lock = lock.replace(
            &format!("name = \"{m}\"\nversion = \"{from}\"\n"),
            &format!("name = \"{m}\"\nversion = \"{to}\"\n"),
        );
    }
    std::fs::write(repo.join("Cargo.lock"), lock).unwrap();
}

/// Asset names in the order the release publishes them.
fn asset_names() -> Vec<String> {
    let mut v: Vec<String> = BINARIES
        .iter()
        .flat_map(|b| TARGETS.iter().map(move |t| format!("{b}-{t}")))
        .collect();
    v.sort();
    v.extend(
        [
            "SHA256SUMS",
            "provenance.intoto.jsonl",
            "provenance.key.pub",
        ]
        .map(String::from),
    );
    v
}

impl Setup {
    fn release(&self, extra: &[&str]) -> (Output, String, String) {
        self.release_to(&self.github.url, extra)
    }

    fn release_to(&self, github_url: &str, extra: &[&str]) -> (Output, String, String) {
        let out = {
            let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
            c.current_dir(&self.repo)
                .env("GIT_AUTHOR_NAME", "Release Test")
                .env("GIT_AUTHOR_EMAIL", "release@custody.invalid")
                .env("GIT_COMMITTER_NAME", "Release Test")
                .env("GIT_COMMITTER_EMAIL", "release@custody.invalid")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("CUSTODY_RELEASE_GITHUB_TOKEN", GITHUB_TOKEN)
                .env("CUSTODY_RELEASE_GITLAB_TOKEN", GITLAB_TOKEN)
                .args(["release", VERSION, "--root"])
                .arg(&self.repo)
                .arg("--assets")
                .arg(&self.assets)
                .args(["--github-api-url", github_url])
                .args(["--github-repo", OWNER_REPO])
                .args(["--gitlab-api-url", &self.gitlab.url])
                .args(["--gitlab-project", PROJECT])
                .args(extra);
            c.output().unwrap()
        };
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        for token in [GITHUB_TOKEN, GITLAB_TOKEN] {
            assert!(
                !stdout.contains(token) && !stderr.contains(token),
                "a token reached the output:\n{stdout}\n{stderr}"
            );
        }
        (out, stdout, stderr)
    }

    /// Every file of the copy (outside .git) with its bytes, plus HEAD, tags and status.
    fn snapshot(&self) -> (BTreeMap<String, String>, String, String, String) {
        let mut files = BTreeMap::new();
        let mut stack = vec![self.repo.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.file_name().is_some_and(|n| n == ".git") {
                    continue;
                }
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(&self.repo).unwrap().display().to_string();
                    files.insert(rel, sha256_hex(&std::fs::read(&p).unwrap()));
                }
            }
        }
        (
            files,
            git(&self.repo, &["rev-parse", "HEAD"]),
            git(&self.repo, &["tag", "-l"]),
            git(&self.repo, &["status", "--porcelain"]),
        )
    }
}

/// The published state both forges must end in.
fn assert_released(s: &Setup) {
    let names = asset_names();
    // git: the release commit on top of the original, then the commits pinning the
    // workflows' and docs' references to Custody by SHA, tagged at the last
    let log = git(&s.repo, &["log", "--format=%s"]);
    let subjects: Vec<&str> = log.lines().collect();
    let release = subjects
        .iter()
        .position(|l| *l == format!("Release {VERSION}"))
        .unwrap_or_else(|| panic!("no release commit: {subjects:?}"));
    assert_eq!(subjects.get(release + 1), Some(&"before the release"));
    assert_eq!(release, 3, "three levels of pins: {subjects:?}");
    for pin in &subjects[..release] {
        assert!(
            pin.starts_with(&format!("Release {VERSION}: pin Custody's own references")),
            "{subjects:?}"
        );
    }
    let (out, text) = support::run(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["pin", "--check", "--root"])
            .arg(&s.repo),
    );
    assert!(out.status.success(), "the released tree's pins: {text}");
    assert_eq!(git(&s.repo, &["tag", "-l"]), TAG);
    assert_eq!(
        git(&s.repo, &["rev-parse", &format!("{TAG}^{{commit}}")]),
        git(&s.repo, &["rev-parse", "HEAD"])
    );
    assert_eq!(git(&s.repo, &["cat-file", "-t", TAG]), "tag", "annotated");
    assert_eq!(git(&s.repo, &["status", "--porcelain"]), "");
    // versions and changelog
    let cargo_toml = std::fs::read_to_string(s.repo.join("Cargo.toml")).unwrap();
    assert!(cargo_toml.contains(&format!("[workspace.package]\nversion = \"{VERSION}\"")));
    let lock = std::fs::read_to_string(s.repo.join("Cargo.lock")).unwrap();
    assert!(lock.contains(&format!("name = \"xtask\"\nversion = \"{VERSION}\"")));
    assert!(lock.contains(&format!(
        "name = \"custody-evidence\"\nversion = \"{VERSION}\""
    )));
    // only the workspace members' versions changed in Cargo.lock, no dependency
    // the tree before the release commit (under the three pin commits)
    let before = git(&s.repo, &["show", "HEAD~4:Cargo.lock"]);
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(lock.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(before.lines().count(), lock.lines().count());
    assert!(!changed.is_empty());
    let bumped = format!("version = \"{VERSION}\"");
    assert!(
        changed
            .iter()
            .all(|(a, b)| *a == "version = \"0.1.0\"" && *b == bumped),
        "{changed:?}"
    );
    let changelog = std::fs::read_to_string(s.repo.join("CHANGELOG.md")).unwrap();
    let heading = format!("## [Unreleased]\n\n## [{VERSION}] - ");
    let at = changelog
        .find(&heading)
        .expect("an empty Unreleased above the release");
    let date = &changelog[at + heading.len()..at + heading.len() + 11];
    assert!(
        date.len() == 11 && date.as_bytes()[4] == b'-' && date.ends_with('\n'),
        "a YYYY-MM-DD date: {date:?}"
    );
    assert!(
        changelog[at..].contains("### Added"),
        "the entries moved under the release"
    );
    // manifests carry the checksums; components and templates the release lines
    for step in BINARIES {
        let m: Value = serde_json::from_str(
            &std::fs::read_to_string(s.repo.join(format!("actions/{step}/manifest.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(m["version"], VERSION);
        assert_eq!(m["released"], true);
        assert_eq!(m["repository"], OWNER_REPO);
        for t in TARGETS {
            let name = format!("{step}-{t}");
            let bytes = std::fs::read(s.assets.join(&name)).unwrap();
            assert_eq!(m["assets"][t]["name"], name);
            assert_eq!(m["assets"][t]["sha256"], sha256_hex(&bytes));
        }
    }
    let template =
        std::fs::read_to_string(s.repo.join("templates/compliance-pipeline/template.yml")).unwrap();
    assert!(template.contains(&format!("default: \"{VERSION}\" # release: version")));
    assert!(template.contains(&format!("default: \"{OWNER_REPO}\" # release: repository")));
    let x86 =
        sha256_hex(&std::fs::read(s.assets.join("custody-x86_64-unknown-linux-musl")).unwrap());
    assert!(template.contains(&format!("custody-x86_64-unknown-linux-musl={x86}")));
    let source =
        std::fs::read_to_string(s.repo.join("components/compliance-pipeline/template.yml"))
            .unwrap();
    assert!(source.contains(&format!("default: \"{VERSION}\" # release: version")));

    // GitHub: one published release, every asset once with the right bytes
    let releases = s.github.releases();
    assert_eq!(releases.len(), 1, "{releases:?}");
    let r = &releases[0];
    assert_eq!(r.tag, TAG);
    assert!(!r.draft, "published");
    assert_eq!(r.commitish, git(&s.repo, &["rev-parse", "HEAD"]));
    assert!(
        r.body.contains("### Added"),
        "the CHANGELOG section is the body"
    );
    let mut got: Vec<&str> = r.assets.iter().map(|a| a.name.as_str()).collect();
    got.sort_unstable();
    let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(got, want, "every asset exactly once, never the private key");
    for a in &r.assets {
        assert_eq!(
            a.bytes,
            std::fs::read(s.assets.join(&a.name)).unwrap(),
            "{}",
            a.name
        );
    }
    let st = s.github.state.lock().unwrap();
    assert!(
        st.authorization
            .iter()
            .all(|h| *h == format!("Bearer {GITHUB_TOKEN}"))
    );
    drop(st);

    // GitLab: the package holds each file once, the release one link per asset
    let st = s.gitlab.state.lock().unwrap();
    assert_eq!(st.packages.len(), 1);
    let p = &st.packages[0];
    assert_eq!((p.name.as_str(), p.version.as_str()), ("custody", VERSION));
    let mut files: Vec<&str> = p.files.iter().map(|f| f.name.as_str()).collect();
    files.sort_unstable();
    assert_eq!(files, want);
    for f in &p.files {
        assert_eq!(f.bytes, std::fs::read(s.assets.join(&f.name)).unwrap());
    }
    assert_eq!(st.releases.len(), 1);
    let gr = &st.releases[0];
    assert_eq!(gr.tag, TAG);
    assert_eq!(gr.git_ref, git(&s.repo, &["rev-parse", "HEAD"]));
    assert!(gr.description.contains("### Added"));
    let mut links: Vec<&str> = gr.links.iter().map(|l| l.name.as_str()).collect();
    links.sort_unstable();
    assert_eq!(links, want, "one link per asset");
    for l in &gr.links {
        assert_eq!(
            l.url,
            format!(
                "{}/projects/{PROJECT_ESCAPED}/packages/generic/custody/{VERSION}/{}",
                s.gitlab.url, l.name
            )
        );
        assert_eq!(l.link_type, "package");
    }
    assert!(st.tokens.iter().all(|t| t == GITLAB_TOKEN));
}

#[test]
fn release_dry_run_prints_the_plan_and_changes_nothing() {
    let s = setup();
    let before = s.snapshot();
    let (out, stdout, stderr) = s.release(&["--dry-run"]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(s.snapshot(), before, "no file or git change");
    assert!(s.github.requests().is_empty(), "{:?}", s.github.requests());
    assert!(s.gitlab.requests().is_empty(), "{:?}", s.gitlab.requests());
    // every step, every asset with size and checksum, every kind of call
    for step in [
        "1. validate",
        "2. prepare",
        "3. push",
        "4. github",
        "5. gitlab",
    ] {
        assert!(stdout.contains(step), "{step} missing:\n{stdout}");
    }
    for name in asset_names() {
        let bytes = std::fs::read(s.assets.join(&name)).unwrap();
        let line = format!(
            "{name}  {} bytes  sha256:{}",
            bytes.len(),
            sha256_hex(&bytes)
        );
        assert!(stdout.contains(&line), "{line} missing:\n{stdout}");
    }
    assert!(!stdout.contains("provenance.key "), "never the private key");
    for call in [
        format!(
            "GET {}/repos/{OWNER_REPO}/releases/tags/{TAG}",
            s.github.url
        ),
        format!("POST {}/repos/{OWNER_REPO}/releases", s.github.url),
        "POST UPLOAD_URL?name=custody-x86_64-unknown-linux-musl".to_owned(),
        format!(
            "PATCH {}/repos/{OWNER_REPO}/releases/RELEASE_ID {{draft: false}}",
            s.github.url
        ),
        format!(
            "PUT {}/projects/{PROJECT_ESCAPED}/packages/generic/custody/{VERSION}/SHA256SUMS",
            s.gitlab.url
        ),
        format!("POST {}/projects/{PROJECT_ESCAPED}/releases", s.gitlab.url),
        format!("git commit -m \"Release {VERSION}\"; git tag -a {TAG}"),
    ] {
        assert!(stdout.contains(&call), "{call} missing:\n{stdout}");
    }
}

#[test]
fn release_full_run_publishes_on_both_forges() {
    let s = setup();
    let (out, stdout, stderr) = s.release(&["--push", "origin"]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_released(&s);
    // the branch and the annotated tag reached the remote
    let head = git(&s.repo, &["rev-parse", "HEAD"]);
    assert_eq!(git(&s.remote, &["rev-parse", "refs/heads/main"]), head);
    assert_eq!(
        git(&s.remote, &["rev-parse", &format!("{TAG}^{{commit}}")]),
        head
    );
    assert_eq!(git(&s.remote, &["cat-file", "-t", TAG]), "tag");
    assert!(
        stdout.contains(&format!("released {VERSION}: tag {TAG}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("11 uploaded, 0 replaced, 0 already there; published"),
        "{stdout}"
    );
    // one progress line per step on stderr
    for step in [
        "[1/5] validate",
        "[2/5] prepare",
        "[3/5] push",
        "[4/5] github",
        "[5/5] gitlab",
    ] {
        assert!(stderr.contains(step), "{step}:\n{stderr}");
    }
    // a rerun of a finished release changes and uploads nothing
    let gh_before = s.github.requests().len();
    let (out, stdout, stderr) = s.release(&["--push", "origin"]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("0 uploaded, 0 replaced, 11 already there; was already published"),
        "{stdout}"
    );
    let after = s.github.requests();
    assert!(
        after[gh_before..].iter().all(|r| r.starts_with("GET ")),
        "only lookups: {:?}",
        &after[gh_before..]
    );
    let puts = s
        .gitlab
        .requests()
        .iter()
        .filter(|r| r.starts_with("PUT "))
        .count();
    assert_eq!(puts, 11, "each package file uploaded once over both runs");
    assert_released(&s);
}

#[test]
fn release_resumes_after_a_refused_upload() {
    let s = setup();
    let second = asset_names()[1].clone();
    s.github.state.lock().unwrap().fail_upload_once = Some(second.clone());
    let (out, _stdout, stderr) = s.release(&[]);
    assert!(
        !out.status.success(),
        "the refused upload must fail the run"
    );
    assert!(stderr.contains("the github step failed"), "{stderr}");
    assert!(
        stderr.contains(&format!("asset {second}: upload failed")),
        "{stderr}"
    );
    assert!(stderr.contains("HTTP 500"), "{stderr}");
    assert!(stderr.contains("rerun the same command"), "{stderr}");
    // never half-published: a draft with the first asset only; GitLab untouched
    let r = s.github.releases();
    assert_eq!(r.len(), 1);
    assert!(r[0].draft, "still a draft");
    assert_eq!(r[0].assets.len(), 1);
    assert!(s.gitlab.requests().is_empty(), "{:?}", s.gitlab.requests());
    // prepared and tagged locally
    assert_eq!(git(&s.repo, &["tag", "-l"]), TAG);
    let head = git(&s.repo, &["rev-parse", "HEAD"]);

    // the same command finishes: no second commit or tag, no duplicate release or asset
    let (out, stdout, stderr) = s.release(&[]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("{TAG} exists at HEAD, resuming")),
        "{stderr}"
    );
    assert!(stderr.contains("draft"), "{stderr}");
    assert_eq!(git(&s.repo, &["rev-parse", "HEAD"]), head);
    assert!(
        stdout.contains("10 uploaded, 0 replaced, 1 already there; published"),
        "{stdout}"
    );
    let reqs = s.github.requests();
    assert_eq!(
        reqs.iter()
            .filter(|r| *r == &format!("POST /repos/{OWNER_REPO}/releases"))
            .count(),
        1,
        "one release created: {reqs:?}"
    );
    assert_released(&s);
}

#[test]
fn release_replaces_an_asset_of_another_size() {
    let s = setup();
    // an earlier attempt left a draft with a truncated SHA256SUMS
    {
        let mut st = s.github.state.lock().unwrap();
        st.next_id = 100;
        st.releases.push(GhRelease {
            id: 7,
            tag: TAG.into(),
            commitish: "main".into(),
            name: format!("Custody {VERSION}"),
            body: String::new(),
            draft: true,
            assets: vec![GhAsset {
                id: 8,
                name: "SHA256SUMS".into(),
                bytes: b"truncated".to_vec(),
            }],
        });
    }
    let (out, stdout, stderr) = s.release(&[]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("10 uploaded, 1 replaced, 0 already there; published"),
        "{stdout}"
    );
    assert!(
        s.github
            .requests()
            .contains(&format!("DELETE /repos/{OWNER_REPO}/releases/assets/8"))
    );
    assert_released(&s);
}

#[test]
fn release_refuses_a_corrupted_asset_before_any_request() {
    let s = setup();
    let before = s.snapshot();
    // one byte changed after SHA256SUMS was written
    let victim = s.assets.join("policy-check-aarch64-unknown-linux-musl");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&victim, bytes).unwrap();
    let (out, stdout, stderr) = s.release(&[]);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.contains("asset policy-check-aarch64-unknown-linux-musl:")
            && stderr.contains("corrupt"),
        "{stderr}"
    );
    assert!(s.github.requests().is_empty());
    assert!(s.gitlab.requests().is_empty());
    assert_eq!(s.snapshot(), before, "nothing prepared either");
}

#[test]
fn release_tokens_never_reach_the_output() {
    let s = setup();
    // the forge refuses the token: the error is shown, the token is not
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen2 = Arc::clone(&seen);
    let url = serve(Arc::new(move |req| {
        seen2.lock().unwrap().push(
            req.headers
                .get("authorization")
                .cloned()
                .unwrap_or_default(),
        );
        reply(
            401,
            &json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        )
    }));
    let (out, stdout, stderr) = s.release_to(&url, &["--dry-run"]);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("token set"), "{stdout}");
    let (out, _stdout, stderr) = s.release_to(&url, &["--no-gitlab"]);
    assert!(!out.status.success());
    assert!(stderr.contains("Bad credentials"), "{stderr}");
    assert!(stderr.contains("the github step failed"), "{stderr}");
    // `release_to` asserts on every run that neither token is in stdout or stderr; the
    // server did receive it, so its absence from the output is not for want of use
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|h| *h == format!("Bearer {GITHUB_TOKEN}")),
        "{seen:?}"
    );
}

#[test]
fn release_tags_a_release_commit_left_untagged() {
    let s = setup();
    // a run that stopped between the commit and the tag
    let (out, stdout, stderr) = s.release(&["--no-github", "--no-gitlab"]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(s.github.requests().is_empty() && s.gitlab.requests().is_empty());
    git(&s.repo, &["tag", "-d", TAG]);
    let head = git(&s.repo, &["rev-parse", "HEAD"]);
    let (out, stdout, stderr) = s.release(&[]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("HEAD is the release commit, pinning and tagging"),
        "{stderr}"
    );
    assert_eq!(
        git(&s.repo, &["rev-parse", "HEAD"]),
        head,
        "no second commit"
    );
    assert_released(&s);
}

#[test]
fn release_refuses_bad_versions_and_restores_a_failed_prepare() {
    let s = setup();
    let before = s.snapshot();
    for (version, why) in [
        ("v0.2.0", "without the `v`"),
        ("0.2", "not a semantic version"),
        ("0.1.0", "not above the workspace version 0.1.0"),
        ("0.0.9", "not above the workspace version 0.1.0"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["release", version, "--no-github", "--no-gitlab", "--root"])
            .arg(&s.repo)
            .arg("--assets")
            .arg(&s.assets)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{version} accepted");
        assert!(stderr.contains(why), "{version}: {stderr}");
    }
    // uncommitted changes are refused (the release commit must describe the source)
    std::fs::write(s.repo.join("stray.txt"), "x").unwrap();
    let (out, _, stderr) = s.release(&[]);
    assert!(!out.status.success());
    assert!(
        stderr.contains("uncommitted changes") && stderr.contains("stray.txt"),
        "{stderr}"
    );
    std::fs::remove_file(s.repo.join("stray.txt")).unwrap();
    // a manifest names a binary the assets lack: refused before anything changes
    let sums_path = s.assets.join("SHA256SUMS");
    let sums = std::fs::read_to_string(&sums_path).unwrap();
    let kept: String = sums
        .lines()
        .filter(|l| !l.ends_with("runner-guard-x86_64-unknown-linux-musl"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&sums_path, kept).unwrap();
    let (out, _, stderr) = s.release(&[]);
    assert!(!out.status.success());
    assert!(
        stderr.contains("asset runner-guard-x86_64-unknown-linux-musl: named by")
            && !stderr.contains("prepare step"),
        "{stderr}"
    );
    assert_eq!(s.snapshot(), before);
    std::fs::write(&sums_path, sums).unwrap();
    // a failure inside prepare (a component with an unknown release marker, found
    // while rendering, after the version and CHANGELOG were changed) puts every file back
    let component = s.repo.join("components/runner-guard/template.yml");
    let text = std::fs::read_to_string(&component).unwrap();
    std::fs::write(
        &component,
        text.replacen("# release: version", "# release: bogus", 1),
    )
    .unwrap();
    git(&s.repo, &["commit", "-q", "-am", "a bad marker"]);
    let before = s.snapshot();
    let (out, _, stderr) = s.release(&[]);
    assert!(!out.status.success());
    assert!(stderr.contains("the prepare step failed"), "{stderr}");
    assert!(
        stderr.contains("unknown release marker") && stderr.contains("restored"),
        "{stderr}"
    );
    assert_eq!(s.snapshot(), before, "the working tree is as it was");
    assert!(s.github.requests().is_empty() && s.gitlab.requests().is_empty());
}
