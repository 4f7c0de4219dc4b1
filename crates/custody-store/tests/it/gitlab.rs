//! The GitLab store against an in-test server on 127.0.0.1 that answers like GitLab's
//! generic package and packages APIs: files kept in memory, JSON shaped like the examples
//! in `tests/data/gitlab/`, tokens checked, failures injected on demand. No traffic
//! leaves loopback.

use std::collections::VecDeque;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custody_evidence::{Digest, Material};
use custody_store::{
    AnyStore, EvidenceStore, GitLabError, GitLabOptions, GitLabStore, GitLabToken, ObjectSource,
    Query, Retention, StoreError, open_gitlab_store, open_store,
};
use custody_test_support::http::read_head;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Rec, envelope, retention};

const PAT: &str = "glpat-test-secret-0123456789";
const JOB: &str = "job-test-secret-9876543210";
/// `acme/app` as the client addresses it: one URL-encoded path segment.
const PROJECT: &str = "acme%2Fapp";
const PACKAGE: &str = "custody-evidence";

/// A documented response body (tests/data/gitlab), read once per process: the 1,000-
/// record log race asks for tens of thousands of them.
fn data(name: &str) -> Value {
    static CACHE: std::sync::OnceLock<Mutex<std::collections::HashMap<String, Value>>> =
        std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap();
    cache
        .entry(name.to_owned())
        .or_insert_with(|| {
            let path = format!("{}/tests/data/gitlab/{name}", env!("CARGO_MANIFEST_DIR"));
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
        })
        .clone()
}

// ---------------------------------------------------------------------------------------
// The server.

struct StoredFile {
    id: u64,
    package_id: u64,
    name: String,
    bytes: Vec<u8>,
    /// As GitLab lists it, computed once at upload.
    sha256: String,
}

#[derive(Default)]
struct State {
    /// id, name, version
    packages: Vec<(u64, String, String)>,
    files: Vec<StoredFile>,
    next_id: u64,
    /// Statuses answered, in order, before requests are served again.
    fail: VecDeque<u16>,
    /// When a file is uploaded into this version, another writer's file lands first.
    race: Option<(String, String, Vec<u8>)>,
    /// Downloads answer 302 to this origin (object storage, in GitLab's terms).
    redirect_to: Option<String>,
    /// Uploads arrive altered (a proxy that rewrites bodies).
    alter_uploads: bool,
    /// method, path, the token header sent (if any)
    log: Vec<(String, String, Option<String>)>,
}

impl State {
    fn package(&mut self, name: &str, version: &str) -> u64 {
        if let Some((id, ..)) = self
            .packages
            .iter()
            .find(|(_, n, v)| n == name && v == version)
        {
            return *id;
        }
        let id = self.id();
        self.packages.push((id, name.into(), version.into()));
        id
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn add_file(&mut self, version: &str, name: &str, bytes: Vec<u8>) -> u64 {
        let package_id = self.package(PACKAGE, version);
        let id = self.id();
        self.files.push(StoredFile {
            id,
            package_id,
            name: name.into(),
            sha256: Digest::of(&bytes).hex(),
            bytes,
        });
        id
    }

    /// The most recent file of that name, as GitLab's download returns.
    fn latest(&self, name: &str, version: &str, file: &str) -> Option<&StoredFile> {
        let ids: Vec<u64> = self
            .packages
            .iter()
            .filter(|(_, n, v)| n == name && v == version)
            .map(|(id, ..)| *id)
            .collect();
        self.files
            .iter()
            .filter(|f| ids.contains(&f.package_id) && f.name == file)
            .max_by_key(|f| f.id)
    }
}

struct Server {
    addr: String,
    state: Arc<Mutex<State>>,
}

struct Reply {
    status: u16,
    body: Vec<u8>,
    location: Option<String>,
}

impl Reply {
    fn json(status: u16, v: &Value) -> Self {
        Self {
            status,
            body: serde_json::to_vec(v).unwrap(),
            location: None,
        }
    }
    fn message(status: u16, text: &str) -> Self {
        Self::json(status, &json!({ "message": text }))
    }
}

impl Server {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let st = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve(stream, &st);
                });
            }
        });
        Self { addr, state }
    }

    fn url(&self) -> String {
        format!("gitlab+http://{}/acme/app/{PACKAGE}", self.addr)
    }

    fn count(&self, method: &str) -> usize {
        let s = self.state.lock().unwrap();
        s.log.iter().filter(|(m, ..)| m == method).count()
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(request) = read_head(&mut reader) else {
        return Ok(());
    };
    let (method, target) = (request.method.as_str(), request.target.as_str());
    let header = |name: &str| request.headers.get(name).cloned();
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let reply = route(method, target, &header, body, state);
    let reason = match reply.status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Other",
    };
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    if let Some(l) = &reply.location {
        head.push_str(&format!("Location: {l}\r\n"));
    }
    head.push_str("Content-Type: application/json\r\n\r\n");
    out.write_all(head.as_bytes())?;
    if method != "HEAD" {
        out.write_all(&reply.body)?;
    }
    out.flush()
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// GitLab's rules for generic package file names and versions.
fn valid_file(f: &str) -> bool {
    !f.is_empty()
        && f.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn valid_version(v: &str) -> bool {
    // \A(\.?[\w\+-]+\.?)+\z
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
        && !v.contains("...")
        && v.bytes().any(|b| b != b'.')
}

fn page<T: Clone>(items: &[T], query: &str) -> Vec<T> {
    let per: usize = query_param(query, "per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let page: usize = query_param(query, "page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    items
        .iter()
        .skip(per * (page.max(1) - 1))
        .take(per)
        .cloned()
        .collect()
}

fn route(
    method: &str,
    target: &str,
    header: &dyn Fn(&str) -> Option<String>,
    body: Vec<u8>,
    state: &Mutex<State>,
) -> Reply {
    let mut s = state.lock().unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let sent = if header("private-token").is_some() {
        Some("PRIVATE-TOKEN".to_owned())
    } else if header("job-token").is_some() {
        Some("JOB-TOKEN".to_owned())
    } else {
        None
    };
    s.log.push((method.into(), path.into(), sent));
    if let Some(code) = s.fail.pop_front() {
        return Reply::message(code, &format!("{code} failure injected by the test"));
    }
    // object storage behind a redirect: presigned, no token wanted
    if let Some(rest) = path.strip_prefix("/storage/") {
        let (version, file) = rest.split_once('/').unwrap_or((rest, ""));
        return match s.latest(PACKAGE, version, file) {
            Some(f) => Reply {
                status: 200,
                body: f.bytes.clone(),
                location: None,
            },
            None => Reply::json(404, &data("error_404.json")),
        };
    }
    let authorized = header("private-token").as_deref() == Some(PAT)
        || header("job-token").as_deref() == Some(JOB);
    if !authorized {
        return Reply::json(401, &data("error_401.json"));
    }
    let Some(rest) = path.strip_prefix(&format!("/api/v4/projects/{PROJECT}/packages")) else {
        return Reply::message(404, "404 Project Not Found");
    };
    let segs: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match (method, segs.as_slice()) {
        ("PUT", ["generic", name, version, file]) => {
            if *name != PACKAGE || !valid_version(version) || !valid_file(file) {
                return Reply::json(400, &json!({ "error": "package_version is invalid" }));
            }
            if let Some((v, f, b)) = s.race.take() {
                if v == *version {
                    s.add_file(&v, &f, b);
                } else {
                    s.race = Some((v, f, b));
                }
            }
            let mut body = body;
            if s.alter_uploads
                && let Some(last) = body.last_mut()
            {
                *last ^= 1;
            }
            let sha = Digest::of(&body).hex();
            let size = body.len();
            let id = s.add_file(version, file, body);
            let package_id = s.package(PACKAGE, version);
            if query_param(query, "select") == Some("package_file") {
                let mut v = data("upload_package_file.json");
                v["id"] = json!(id);
                v["package_id"] = json!(package_id);
                v["file_name"] = json!(file);
                v["size"] = json!(size);
                v["file_sha256"] = json!(sha);
                Reply::json(201, &v)
            } else {
                Reply::json(201, &data("upload_created.json"))
            }
        }
        ("GET" | "HEAD", ["generic", name, version, file]) => {
            let redirect = s.redirect_to.clone();
            match s.latest(name, version, file) {
                Some(_) if method == "GET" && redirect.is_some() => Reply {
                    status: 302,
                    body: Vec::new(),
                    location: redirect.map(|o| format!("{o}/storage/{version}/{file}")),
                },
                Some(f) => Reply {
                    status: 200,
                    body: f.bytes.clone(),
                    location: None,
                },
                None => Reply::json(404, &data("error_404.json")),
            }
        }
        ("GET", []) => {
            assert_eq!(query_param(query, "package_type"), Some("generic"));
            let name = query_param(query, "package_name").unwrap_or_default();
            let version = query_param(query, "package_version");
            let found: Vec<Value> = s
                .packages
                .iter()
                .filter(|(_, n, v)| n.contains(name) && version.is_none_or(|want| v == want))
                .map(|(id, n, v)| {
                    let mut p = data("package.json");
                    p["id"] = json!(id);
                    p["name"] = json!(n);
                    p["version"] = json!(v);
                    p
                })
                .collect();
            Reply::json(200, &Value::Array(page(&found, query)))
        }
        ("GET", [id, "package_files"]) => {
            let id: u64 = id.parse().unwrap_or(0);
            // the page first, then its JSON: a listing costs its page, not the package
            let files: Vec<&StoredFile> = s.files.iter().filter(|f| f.package_id == id).collect();
            let found: Vec<Value> = page(&files, query)
                .into_iter()
                .map(|f| {
                    let mut v = data("package_file.json");
                    v["id"] = json!(f.id);
                    v["package_id"] = json!(f.package_id);
                    v["file_name"] = json!(f.name);
                    v["size"] = json!(f.bytes.len());
                    v["file_sha256"] = json!(f.sha256);
                    v
                })
                .collect();
            Reply::json(200, &Value::Array(found))
        }
        ("DELETE", [id, "package_files", file_id]) => {
            let (id, file_id): (u64, u64) = (id.parse().unwrap_or(0), file_id.parse().unwrap_or(0));
            let before = s.files.len();
            s.files.retain(|f| !(f.package_id == id && f.id == file_id));
            if s.files.len() == before {
                Reply::json(404, &data("error_404.json"))
            } else {
                Reply {
                    status: 204,
                    body: Vec::new(),
                    location: None,
                }
            }
        }
        _ => Reply::message(404, "404 Not found"),
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn options(token: Option<GitLabToken>) -> GitLabOptions {
    GitLabOptions {
        token,
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        ..GitLabOptions::default()
    }
}

fn store(server: &Server) -> GitLabStore {
    GitLabStore::open(&server.url(), &options(Some(GitLabToken::private(PAT)))).unwrap()
}

fn digests(refs: Vec<custody_store::RecordRef>) -> Vec<Digest> {
    refs.into_iter().map(|r| r.digest).collect()
}

// ---------------------------------------------------------------------------------------
// Tests.

#[test]
fn gitlab_objects_round_trip_and_storing_twice_uploads_nothing() {
    let srv = Server::start();
    let s = store(&srv);
    run(async {
        let r6 = retention();
        let a = s
            .put_object(ObjectSource::Bytes(b"hello"), &r6)
            .await
            .unwrap();
        assert!(a.created);
        assert_eq!(a.digest, Digest::of(b"hello"));
        let puts = srv.count("PUT");
        let b = s
            .put_object(ObjectSource::Bytes(b"hello"), &retention())
            .await
            .unwrap();
        assert!(!b.created);
        assert_eq!(srv.count("PUT"), puts, "a re-put uploads nothing");
        assert_eq!(s.get_object(&a.digest).await.unwrap(), b"hello");
        assert!(s.has_object(&a.digest).await.unwrap());
        assert!(!s.has_object(&Digest::of(b"absent")).await.unwrap());
        assert!(matches!(
            s.get_object(&Digest::of(b"absent")).await,
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(s.retention(&a.digest).await.unwrap(), Some(r6));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("material.bin");
        std::fs::write(&file, vec![7u8; 600_000]).unwrap();
        let c = s
            .put_object(ObjectSource::File(&file), &retention())
            .await
            .unwrap();
        assert_eq!(
            (c.digest, c.size),
            (Digest::of(&vec![7u8; 600_000]), 600_000)
        );
        assert_eq!(s.get_object(&c.digest).await.unwrap().len(), 600_000);
    });
    // everything landed where the module docs say, under names GitLab accepts
    srv.with(|st| {
        let hex = Digest::of(b"hello").hex();
        let version = format!("objects-sha256-{}", &hex[..2]);
        assert!(st.latest(PACKAGE, &version, &hex).is_some());
        let version = format!("retention-sha256-{}", &hex[..2]);
        let name = st
            .files
            .iter()
            .map(|f| f.name.clone())
            .find(|n| n.starts_with(&format!("{hex}.")) && n.ends_with(".json"))
            .unwrap();
        let marker = st.latest(PACKAGE, &version, &name).unwrap();
        assert_eq!(
            name,
            format!("{hex}.{}.json", Digest::of(&marker.bytes).hex())
        );
        let r: Retention = serde_json::from_slice(&marker.bytes).unwrap();
        assert!(r.retain_until > Timestamp::now());
    });
}

#[test]
fn gitlab_records_round_trip_and_re_put_is_idempotent() {
    let srv = Server::start();
    let s = store(&srv);
    let key = custody_evidence::SigningKey::generate();
    run(async {
        let r0 = envelope(&key, &Rec::default());
        let out = s.put_record(&r0, &retention()).await.unwrap();
        assert!(out.created);
        assert_eq!(s.get_object(&out.digest).await.unwrap(), r0);
        assert_eq!(s.chain_head("c").await.unwrap(), Some((0, out.digest)));
        let puts = srv.count("PUT");
        let again = s.put_record(&r0, &retention()).await.unwrap();
        assert!(!again.created);
        assert_eq!(srv.count("PUT"), puts, "a re-put record uploads nothing");
        let r1 = envelope(
            &key,
            &Rec {
                seq: 1,
                prev: Some(out.digest),
                stage: "test",
                ..Default::default()
            },
        );
        let d1 = s.put_record(&r1, &retention()).await.unwrap().digest;
        assert_eq!(s.chain("c").await.unwrap(), vec![(0, out.digest), (1, d1)]);

        // materials come first
        let m = Material {
            name: "bom.json".into(),
            digest: Digest::of(b"bom"),
            size: 3,
            media_type: None,
            format: None,
        };
        let needs = envelope(
            &key,
            &Rec {
                chain: "m",
                materials: vec![m],
                ..Default::default()
            },
        );
        let err = s.put_record(&needs, &retention()).await.unwrap_err();
        assert!(matches!(err, StoreError::MissingMaterial { .. }), "{err}");
        s.put_object(ObjectSource::Bytes(b"bom"), &retention())
            .await
            .unwrap();
        s.put_record(&needs, &retention()).await.unwrap();
    });
}

#[test]
fn gitlab_queries_by_commit_day_subject_and_time() {
    let srv = Server::start();
    let s = store(&srv);
    let key = custody_evidence::SigningKey::generate();
    let t = |v: &str| v.parse::<Timestamp>().unwrap();
    let c1 = "1111111111111111111111111111111111111111";
    let c2 = "2222222222222222222222222222222222222222";
    // a package whose name contains ours: GitLab's name filter is fuzzy, ours must not be
    srv.with(|st| {
        let id = st.id();
        st.packages
            .push((id, format!("{PACKAGE}-old"), "index-day-2026-03-01".into()));
        let fid = st.id();
        st.files.push(StoredFile {
            id: fid,
            package_id: id,
            name: format!("{:020}_{}", 1, Digest::of(b"foreign").hex()),
            bytes: Vec::new(),
            sha256: Digest::of(b"").hex(),
        });
    });
    run(async {
        let put = async |r: Rec<'_>| {
            s.put_record(&envelope(&key, &r), &retention())
                .await
                .unwrap()
                .digest
        };
        let da = put(Rec {
            commit: c1,
            chain: "a",
            at: t("2026-03-01T09:00:00Z"),
            ..Default::default()
        })
        .await;
        let db = put(Rec {
            commit: c1,
            chain: "b",
            stage: "scan",
            subject: b"other",
            at: t("2026-03-02T09:00:00Z"),
            ..Default::default()
        })
        .await;
        let dc = put(Rec {
            commit: c2,
            pipeline: "2",
            chain: "../../c",
            at: t("2026-04-01T09:00:00Z"),
            ..Default::default()
        })
        .await;
        let ask = async |q: Query| digests(s.query(&q).await.unwrap());
        assert_eq!(
            ask(Query {
                commit: Some(c1.to_uppercase()),
                ..Default::default()
            })
            .await,
            vec![da, db]
        );
        assert_eq!(
            ask(Query {
                day: Some("2026-03-02".parse().unwrap()),
                ..Default::default()
            })
            .await,
            vec![db]
        );
        assert_eq!(
            ask(Query {
                subject: Some(Digest::of(b"other")),
                ..Default::default()
            })
            .await,
            vec![db]
        );
        assert_eq!(
            ask(Query {
                commit: Some(c1.into()),
                stage: Some("build".into()),
                ..Default::default()
            })
            .await,
            vec![da]
        );
        assert_eq!(
            ask(Query {
                pipeline: Some("github:acme/app:2".into()),
                ..Default::default()
            })
            .await,
            vec![dc]
        );
        assert_eq!(ask(Query::default()).await, vec![da, db, dc]);
        assert_eq!(
            ask(Query {
                since: Some(t("2026-03-02T00:00:00Z")),
                until: Some(t("2026-04-01T00:00:00Z")),
                ..Default::default()
            })
            .await,
            vec![db]
        );
        assert!(
            ask(Query {
                commit: Some("ffff".into()),
                ..Default::default()
            })
            .await
            .is_empty()
        );
        assert_eq!(s.chain_head("../../c").await.unwrap(), Some((0, dc)));
    });
}

#[test]
fn gitlab_chains_refuse_forks_also_after_a_lost_race() {
    let srv = Server::start();
    let s = store(&srv);
    let key = custody_evidence::SigningKey::generate();
    run(async {
        let d0 = s
            .put_record(&envelope(&key, &Rec::default()), &retention())
            .await
            .unwrap()
            .digest;
        let rec1 = |stage| Rec {
            seq: 1,
            prev: Some(d0),
            stage,
            ..Default::default()
        };
        let d1 = s
            .put_record(&envelope(&key, &rec1("test")), &retention())
            .await
            .unwrap()
            .digest;
        // a second record at position 1
        let err = s
            .put_record(&envelope(&key, &rec1("scan")), &retention())
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::ChainConflict { sequence: 1, existing, .. } if existing == d1),
            "{err}"
        );
        // a record naming the wrong previous
        let wrong = Rec {
            seq: 2,
            prev: Some(d0),
            ..Default::default()
        };
        let err = s
            .put_record(&envelope(&key, &wrong), &retention())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::ChainBroken { .. }), "{err}");

        // another writer's entry for position 2 lands between our check and our upload:
        // the first file for a position wins, and ours is refused as a fork
        let rival = Digest::of(b"rival record");
        srv.with(|st| {
            st.race = Some((
                "chain-c".into(),
                format!("{:012}_{}", 2, rival.hex()),
                rival.to_string().into_bytes(),
            ));
        });
        let late = Rec {
            seq: 2,
            prev: Some(d1),
            stage: "deploy",
            ..Default::default()
        };
        let err = s
            .put_record(&envelope(&key, &late), &retention())
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::ChainConflict { sequence: 2, existing, .. } if existing == rival),
            "{err}"
        );
        assert_eq!(s.chain_head("c").await.unwrap(), Some((2, rival)));
        // the loser was never indexed
        let deploys = s
            .query(&Query {
                stage: Some("deploy".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(deploys.is_empty(), "{deploys:?}");
    });
}

#[test]
fn gitlab_delete_is_refused_before_retention_and_allowed_after() {
    let srv = Server::start();
    let s = store(&srv);
    run(async {
        let locked = s
            .put_object(ObjectSource::Bytes(b"locked"), &retention())
            .await
            .unwrap();
        let err = s.delete_object(&locked.digest).await.unwrap_err();
        assert!(matches!(err, StoreError::RetentionLocked { .. }), "{err}");
        assert!(err.to_string().contains("retention-locked until"));
        assert_eq!(srv.count("DELETE"), 0);
        assert_eq!(s.get_object(&locked.digest).await.unwrap(), b"locked");

        // extended, never shortened
        let r10 = Retention::years_from(Timestamp::now(), 10).unwrap();
        s.extend_retention(&locked.digest, &r10).await.unwrap();
        assert_eq!(
            s.retention(&locked.digest)
                .await
                .unwrap()
                .unwrap()
                .retain_until,
            r10.retain_until
        );
        let err = s
            .extend_retention(&locked.digest, &retention())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::RetentionShorten { .. }), "{err}");
        s.put_object(ObjectSource::Bytes(b"locked"), &retention())
            .await
            .unwrap();
        assert_eq!(
            s.retention(&locked.digest)
                .await
                .unwrap()
                .unwrap()
                .retain_until,
            r10.retain_until,
            "re-storing with a shorter lock keeps the longer one"
        );

        let expired = Retention::years_from("2010-01-01T00:00:00Z".parse().unwrap(), 6).unwrap();
        let old = s
            .put_object(ObjectSource::Bytes(b"old"), &expired)
            .await
            .unwrap();
        s.delete_object(&old.digest).await.unwrap();
        assert!(!s.has_object(&old.digest).await.unwrap());
        assert!(s.retention(&old.digest).await.unwrap().is_none());
        assert!(matches!(
            s.delete_object(&old.digest).await,
            Err(StoreError::NotFound { .. })
        ));
    });
}

/// Issue 15, item 2: any package writer can upload under any name, and GitLab serves the
/// newest upload of a name. A marker with a shorter retention shortens nothing (the
/// longest marker counts); a marker name uploaded again with other bytes, or junk
/// under an object's name, is an error naming it, never a substitution.
#[test]
fn gitlab_retention_only_grows_and_a_replaced_marker_is_named() {
    let srv = Server::start();
    let s = store(&srv);
    let r10 = Retention::years_from(Timestamp::now(), 10).unwrap();
    let a = run(s.put_object(ObjectSource::Bytes(b"kept"), &r10)).unwrap();
    let hex = a.digest.hex();
    let version = format!("retention-sha256-{}", &hex[..2]);
    // a one-year marker, under a fresh name and under the legacy name
    let short = serde_json::to_vec(&Retention::years_from(Timestamp::now(), 1).unwrap()).unwrap();
    srv.with(|st| {
        st.add_file(
            &version,
            &format!("{hex}.{}.json", Digest::of(&short).hex()),
            short.clone(),
        );
        st.add_file(&version, &format!("{hex}.json"), short.clone());
    });
    let got = run(s.retention(&a.digest)).unwrap().unwrap();
    assert_eq!(
        got.retain_until, r10.retain_until,
        "the longest marker counts"
    );
    // the real marker's name uploaded again with the short date
    let name = srv.with(|st| {
        st.files
            .iter()
            .find(|f| f.name.starts_with(&format!("{hex}.")) && f.bytes != short)
            .unwrap()
            .name
            .clone()
    });
    srv.with(|st| st.add_file(&version, &name, short.clone()));
    let err = run(s.retention(&a.digest)).unwrap_err().to_string();
    assert!(
        err.contains(&name) && err.contains("uploaded again with other bytes"),
        "{err}"
    );
    // and the object's own name uploaded again with junk
    srv.with(|st| {
        st.add_file(
            &format!("objects-sha256-{}", &hex[..2]),
            &hex,
            b"junk".to_vec(),
        )
    });
    assert!(matches!(
        run(s.get_object(&a.digest)),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn gitlab_wrong_or_missing_token_is_a_clear_error_without_the_token() {
    let srv = Server::start();
    let wrong = "glpat-wrong-secret-abcdef";
    let s = GitLabStore::open(&srv.url(), &options(Some(GitLabToken::private(wrong)))).unwrap();
    let err = run(s.put_object(ObjectSource::Bytes(b"x"), &retention())).unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::GitLab(GitLabError::Status { status: 401, .. })
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("401") && text.contains("CUSTODY_GITLAB_TOKEN"),
        "{text}"
    );
    assert!(
        text.contains("/api/v4/projects/acme%2Fapp/packages/generic/"),
        "{text}"
    );
    for shown in [text, format!("{err:?}"), format!("{s:?}")] {
        assert!(!shown.contains(wrong), "the token leaked: {shown}");
    }

    let anonymous = GitLabStore::open(&srv.url(), &options(None)).unwrap();
    let err = run(anonymous.put_object(ObjectSource::Bytes(b"x"), &retention())).unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");

    // the job token travels as JOB-TOKEN, and works
    let job = GitLabStore::open(&srv.url(), &options(Some(GitLabToken::job(JOB)))).unwrap();
    run(job.put_object(ObjectSource::Bytes(b"x"), &retention())).unwrap();
    srv.with(|st| {
        let (_, _, sent) = st.log.last().unwrap();
        assert_eq!(sent.as_deref(), Some("JOB-TOKEN"));
    });
    let picked = GitLabOptions::from_env_values(Some(JOB.into()), None);
    assert!(!format!("{picked:?}").contains(JOB));
}

#[test]
fn gitlab_transient_failures_are_retried_with_a_bound() {
    let srv = Server::start();
    let s = store(&srv);
    srv.with(|st| st.fail.extend([500, 500]));
    let out = run(s.put_object(ObjectSource::Bytes(b"retried"), &retention())).unwrap();
    assert!(out.created);
    assert_eq!(
        srv.count("HEAD"),
        3,
        "the existence check failed twice and was tried a third time"
    );
    assert_eq!(run(s.get_object(&out.digest)).unwrap(), b"retried");

    // a server that keeps failing: three attempts, then a clear error
    srv.with(|st| st.fail.extend([503; 10]));
    let before = srv.with(|st| st.log.len());
    let err = run(s.get_object(&out.digest)).unwrap_err();
    assert_eq!(srv.with(|st| st.log.len()) - before, 3);
    assert!(
        matches!(
            &err,
            StoreError::GitLab(GitLabError::Unavailable {
                status: 503,
                attempts: 3,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("after 3 attempts"), "{err}");
    srv.with(|st| st.fail.clear());

    // a permanent error is not retried
    let before = srv.with(|st| st.log.len());
    let bad = GitLabStore::open(
        &format!("gitlab+http://{}/acme/other/{PACKAGE}", srv.addr),
        &options(Some(GitLabToken::private(PAT))),
    )
    .unwrap();
    let err = run(bad.get_object(&out.digest)).unwrap_err();
    assert_eq!(srv.with(|st| st.log.len()) - before, 1);
    assert!(
        matches!(
            &err,
            StoreError::GitLab(GitLabError::Status { status: 404, .. })
        ),
        "{err:?}"
    );
}

#[test]
fn gitlab_server_gone_is_a_clear_error() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let s = GitLabStore::open(
        &format!("gitlab+http://{addr}/acme/app/{PACKAGE}"),
        &options(Some(GitLabToken::private(PAT))),
    )
    .unwrap();
    let err = run(s.has_object(&Digest::of(b"x"))).unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::GitLab(GitLabError::Unreachable { attempts: 3, .. })
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("cannot reach gitlab") && text.contains(&addr),
        "{text}"
    );
    assert!(!text.contains(PAT) && !format!("{err:?}").contains(PAT));
}

#[test]
fn gitlab_tampered_downloads_are_detected_and_redirects_get_no_token() {
    let srv = Server::start();
    let s = store(&srv);
    let a = run(s.put_object(ObjectSource::Bytes(b"pristine"), &retention())).unwrap();

    // object storage on another origin (same server, other host name): the download
    // follows the redirect, and the token stays with GitLab
    let port = srv.addr.rsplit(':').next().unwrap().to_owned();
    srv.with(|st| st.redirect_to = Some(format!("http://localhost:{port}")));
    assert_eq!(run(s.get_object(&a.digest)).unwrap(), b"pristine");
    srv.with(|st| {
        let (_, path, sent) = st.log.last().unwrap();
        assert!(path.starts_with("/storage/"), "{path}");
        assert_eq!(sent, &None, "the token was sent to object storage");
        st.redirect_to = None;
    });

    // someone with delete rights replaced the bytes: a later file of the same name
    srv.with(|st| {
        let hex = a.digest.hex();
        st.add_file(
            &format!("objects-sha256-{}", &hex[..2]),
            &hex,
            b"pristinE".to_vec(),
        );
    });
    let err = run(s.get_object(&a.digest)).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");

    // an upload that GitLab stored with other bytes is refused at once
    srv.with(|st| st.alter_uploads = true);
    let err = run(s.put_object(ObjectSource::Bytes(b"in transit"), &retention())).unwrap_err();
    assert!(
        matches!(&err, StoreError::GitLab(GitLabError::Response { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("altered"), "{err}");
}

#[test]
fn gitlab_urls_open_through_any_store() {
    let srv = Server::start();
    let any = open_gitlab_store(&srv.url(), &options(Some(GitLabToken::private(PAT)))).unwrap();
    assert!(matches!(any, AnyStore::GitLab(_)));
    assert_eq!(any.uri(), srv.url());
    let out = run(any.put_object(ObjectSource::Bytes(b"any"), &retention())).unwrap();
    assert!(run(any.has_object(&out.digest)).unwrap());
    // without options the store is anonymous: fine to open, writes need a token
    assert!(matches!(
        open_store(&srv.url()).unwrap(),
        AnyStore::GitLab(_)
    ));
    for refused in [
        "gitlab+http://gitlab.example.com/acme/app/ev",
        "gitlab://gitlab.example.com/ev",
        "gitlab://oauth2:glpat-in-url@gitlab.example.com/acme/app/ev",
    ] {
        let err = open_store(refused).unwrap_err();
        assert!(matches!(err, StoreError::UnsupportedUrl { .. }), "{err}");
        assert!(!err.to_string().contains("glpat-in-url"), "{err}");
    }
}

#[test]
fn gitlab_a_server_that_never_answers_times_out_as_unreachable() {
    // accepts connections and reads requests, but never answers: a hung GitLab
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&held);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    let opts = GitLabOptions {
        timeout: Duration::from_millis(300),
        ..options(Some(GitLabToken::private(PAT)))
    };
    let s = GitLabStore::open(&format!("gitlab+http://{addr}/acme/app/{PACKAGE}"), &opts).unwrap();
    let started = std::time::Instant::now();
    let err = run(s.has_object(&Digest::of(b"x"))).unwrap_err();
    assert!(
        err.is_transient(),
        "a hung server is worth spooling for: {err:?}"
    );
    assert!(
        matches!(
            &err,
            StoreError::GitLab(GitLabError::Unreachable { attempts: 3, .. })
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded by timeouts and attempts"
    );
    assert!(
        held.lock().unwrap().len() >= 3,
        "every attempt reached the server"
    );
}

/// The store a writer process of the log's concurrency test opens.
pub(crate) fn open_for_writer(url: &str) -> AnyStore {
    AnyStore::GitLab(GitLabStore::open(url, &options(Some(GitLabToken::private(PAT)))).unwrap())
}

/// Issue 14: sixteen processes append records to one package; the first upload of
/// each log file (lowest package-file id) decides every race. 64 records in a CI run
/// (the stand-in lists every file of the package per request);
/// `CUSTODY_LOG_RACE_RECORDS=1000` runs the 1,008.
#[test]
fn gitlab_sixteen_processes_append_a_thousand_records() {
    let server = Server::start();
    let spec = format!("gitlab {}", server.url());
    run(super::log::writers_race_as_processes(
        &store(&server),
        &spec,
        16,
        super::log::race_each(4),
    ));
}

/// Issue 15, fault injection on GitLab: each kind of request of a record write broken
/// in each way (see `faults.rs`). GitLab has no conditional upload, so a retried upload
/// whose first answer was lost leaves a second identical package file; readers take the
/// first of a name, and nothing reads twice.
#[test]
fn gitlab_faults_end_with_the_evidence_stored_once() {
    use super::faults::{Paths, cases, check_tally, run_case};
    use custody_test_support::FaultProxy;

    let paths = Paths {
        object: "/objects-sha256-",
        retention: Some("/retention-sha256-"),
        chain: "/chain-",
        index: "/index-",
        claim: "/log-seq",
        marker: "/log-records",
        listing: "/package_files",
    };
    let cases = cases(&paths, Duration::from_secs(3));
    let mut failed = Vec::new();
    for case in cases {
        let srv = Server::start();
        let direct = store(&srv);
        let proxy = FaultProxy::start(&format!("http://{}", srv.addr), Vec::new()).unwrap();
        let url = format!(
            "gitlab+http://127.0.0.1:{}/acme/app/{PACKAGE}",
            proxy.port()
        );
        let proxied = GitLabStore::open(
            &url,
            &GitLabOptions {
                timeout: Duration::from_secs(2),
                ..options(Some(GitLabToken::private(PAT)))
            },
        )
        .unwrap();
        let key = custody_evidence::SigningKey::generate();
        let name = case.name.clone();
        if run(run_case(case, &proxy, &direct, &proxied, &key)) {
            failed.push(name);
        }
    }
    check_tally(&failed);
}

/// Issue 18: a GitLab instance behind a private CA (TLS inspection, an in-house CA).
/// With the CA among the roots, records go up and come back; without it, the store
/// refuses with an error that names the certificate and what to do, never the token.
#[test]
fn gitlab_over_https_with_a_private_ca() {
    use custody_http::net::{Net, ProxySettings};
    use custody_test_support::{TestCa, TlsFront};
    let srv = Server::start();
    let ca = TestCa::new("GitLab inspection CA");
    let front = TlsFront::start(&ca, srv.addr.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(dir.path(), "ca");
    let url = format!("gitlab://{}/acme/app/{PACKAGE}", front.addr());
    let trusting = GitLabOptions {
        net: Net::new(&[ca_file], ProxySettings::default()).unwrap(),
        ..options(Some(GitLabToken::private(PAT)))
    };
    let s = GitLabStore::open(&url, &trusting).unwrap();
    run(async {
        let put = s
            .put_object(ObjectSource::Bytes(b"over https"), &retention())
            .await
            .unwrap();
        assert_eq!(s.get_object(&put.digest).await.unwrap(), b"over https");
    });
    let plain = GitLabStore::open(&url, &options(Some(GitLabToken::private(PAT)))).unwrap();
    let e = run(plain.put_object(ObjectSource::Bytes(b"refused"), &retention())).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("not trusted") && text.contains("--ca-file"),
        "{text}"
    );
    assert!(!text.contains(PAT), "{text}");
}
