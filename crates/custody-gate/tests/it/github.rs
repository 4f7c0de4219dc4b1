//! The GitHub App path: deliveries signed (or not) with the webhook secret, judged
//! against the store, reviewed through the run's protection rule endpoint.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use custody_evidence::KeyIdScheme;
use custody_gate::github::App;
use custody_gate::judge::{Judge, Settings};
use custody_gate::serve::{Limits, Service};
use custody_gate::webhook::github_signature;
use custody_http::Secret;
use custody_policy::check::RecordSettings;
use custody_store::{AnyStore, EvidenceStore as _, LocalStore, Query, Retention};
use custody_test_support::github_app::{Facts, GitHubApp};
use custody_test_support::oidc::app_key_pem;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::support::{COMMIT, Pipeline, junit, lcov};

const APP_ID: u64 = 123_456;
const INSTALLATION: u64 = 7;
const SECRET: &str = "test-webhook-secret";

struct Running {
    addr: SocketAddr,
    service: Arc<Service>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.done.await.unwrap().unwrap();
    }
}

fn judge(p: &Pipeline, store: AnyStore) -> Judge {
    Judge {
        store: Arc::new(store),
        trusted_keys: p.trusted(),
        policies: p.policies(json!({})),
        record: Some(RecordSettings {
            key: Arc::new(p.key.clone()),
            keyid_scheme: KeyIdScheme::Empty,
            retention: Retention::hipaa_default().unwrap(),
        }),
        settings: Settings {
            attempts: 3,
            backoff: Duration::from_millis(20),
            report_url: Some("https://audit.example/records/{record}".into()),
            ..Settings::default()
        },
    }
}

fn local(p: &Pipeline) -> AnyStore {
    AnyStore::Local(LocalStore::create(p.store_path().to_str().unwrap()).unwrap())
}

async fn start(judge: Judge, gh: &GitHubApp, concurrency: usize) -> Running {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let mut app = App::new(
        &gh.url(),
        APP_ID,
        &Secret::new(app_key_pem().to_owned()),
        Secret::new(SECRET.to_owned()),
        custody_http::net::Net::default(),
    )
    .unwrap();
    app.backoff = Duration::from_millis(20);
    let service = Service::new(
        judge,
        Some(app),
        None,
        Limits {
            concurrency,
            ..Limits::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let done = tokio::spawn(Arc::clone(&service).run(listener, async {
        let _ = rx.await;
    }));
    Running {
        addr,
        service,
        stop: Some(tx),
        done,
    }
}

/// A `deployment_protection_rule` payload as GitHub documents it, for run `run`.
fn payload(api: &str, run: u64, commit: &str) -> Vec<u8> {
    json!({
        "action": "requested",
        "environment": "production",
        "event": "push",
        "sha": commit,
        "ref": "refs/heads/main",
        "deployment_callback_url": format!("{api}/repos/acme/app/actions/runs/{run}/deployment_protection_rule"),
        "deployment": {"id": 1_000_000 + run, "sha": commit, "ref": "main", "environment": "production",
                       "task": "deploy", "payload": {}, "creator": {"login": "github-actions[bot]"}},
        "pull_requests": [],
        "repository": {"id": 1, "full_name": "acme/app", "name": "app", "owner": {"login": "acme"}},
        "organization": {"login": "acme"},
        "installation": {"id": INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNw=="},
        "sender": {"login": "dev"}
    })
    .to_string()
    .into_bytes()
}

/// POSTs a delivery; returns the status and body.
fn deliver(addr: SocketAddr, delivery: &str, body: &[u8], secret: &str) -> (u16, String) {
    let sig = github_signature(&Secret::new(secret.to_owned()), body);
    post(
        addr,
        "/github",
        &[
            ("X-GitHub-Event", "deployment_protection_rule"),
            ("X-GitHub-Delivery", delivery),
            ("X-Hub-Signature-256", &sig),
        ],
        body,
    )
}

pub fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned(),
    )
}

/// Waits until the stand-in has `n` reviews (or 60 s).
async fn reviews(gh: &GitHubApp, n: usize) -> Vec<(u64, Value)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = gh.reviews();
        if r.len() >= n || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn policy_records(p: &Pipeline) -> usize {
    local(p)
        .query(&Query {
            stage: Some("policy".into()),
            ..Query::default()
        })
        .await
        .unwrap()
        .len()
}

fn facts() -> Facts {
    Facts::approved("production", &["alice", "bob"], "dev")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliant_run_is_approved_and_the_decision_stored() {
    let p = Pipeline::new();
    p.compliant().await;
    let gh = GitHubApp::start(APP_ID, INSTALLATION, facts());
    let svc = start(judge(&p, local(&p)), &gh, 4).await;
    let (status, body) = deliver(svc.addr, "d-allow", &payload(&gh.url(), 42, COMMIT), SECRET);
    assert_eq!(status, 202, "{body}");
    let r = reviews(&gh, 1).await;
    assert_eq!(r.len(), 1);
    let (run, review) = &r[0];
    assert_eq!(*run, 42);
    assert_eq!(review["state"], "approved", "{review}");
    assert_eq!(review["environment_name"], "production");
    let comment = review["comment"].as_str().unwrap();
    assert!(comment.starts_with("Custody gate: approved."), "{comment}");
    assert!(comment.contains("ghcr.io/acme/app@sha256:"), "{comment}");
    assert!(
        comment.contains("https://audit.example/records/sha256:"),
        "{comment}"
    );
    // the App JWT minted one installation token; facts were read with it
    assert_eq!(gh.tokens_minted(), 1);
    assert!(
        gh.server
            .targets()
            .iter()
            .any(|t| t.ends_with("/actions/runs/42/approvals"))
    );
    // the decision and its VSA are in the store
    assert_eq!(policy_records(&p).await, 2);
    let (status, health) = get(svc.addr, "/healthz");
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["approved"], 1);
    assert_eq!(health["status"], "ok");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_tests_are_rejected_with_the_rule_that_failed() {
    let p = Pipeline::new();
    let key = p.key.clone();
    p.compliant().await;
    // a later test stage of the same commit fails
    p.upload(
        "test",
        &[("junit.xml", junit(true)), ("lcov.info", lcov())],
        Some("production"),
        &key,
    )
    .await;
    let gh = GitHubApp::start(APP_ID, INSTALLATION, facts());
    let svc = start(judge(&p, local(&p)), &gh, 4).await;
    deliver(svc.addr, "d-deny", &payload(&gh.url(), 42, COMMIT), SECRET);
    let r = reviews(&gh, 1).await;
    assert_eq!(r[0].1["state"], "rejected", "{}", r[0].1);
    let comment = r[0].1["comment"].as_str().unwrap();
    assert!(comment.starts_with("Custody gate: rejected."), "{comment}");
    assert!(comment.contains("- tests-passed:"), "{comment}");
    assert!(comment.contains("decision record sha256:"), "{comment}");
    assert_eq!(policy_records(&p).await, 2, "a denial is stored too");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_without_evidence_is_rejected() {
    let p = Pipeline::new();
    p.compliant().await;
    let gh = GitHubApp::start(APP_ID, INSTALLATION, facts());
    let svc = start(judge(&p, local(&p)), &gh, 4).await;
    let other = "fedcba9876543210fedcba9876543210fedcba98";
    deliver(svc.addr, "d-none", &payload(&gh.url(), 43, other), SECRET);
    let r = reviews(&gh, 1).await;
    assert_eq!(r[0].1["state"], "rejected");
    assert!(
        r[0].1["comment"].as_str().unwrap().contains(&format!(
            "No verified evidence in the store names an artifact built from commit {other}"
        )),
        "{}",
        r[0].1
    );
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_get_401_and_nothing_is_evaluated() {
    let p = Pipeline::new();
    p.compliant().await;
    let gh = GitHubApp::start(APP_ID, INSTALLATION, facts());
    let svc = start(judge(&p, local(&p)), &gh, 4).await;
    let body = payload(&gh.url(), 42, COMMIT);
    // another secret
    let (status, _) = deliver(svc.addr, "d-1", &body, "not-the-secret");
    assert_eq!(status, 401);
    // a body changed after signing
    let sig = github_signature(&Secret::new(SECRET.to_owned()), &body);
    let mut changed = body.clone();
    let at = changed.iter().position(|b| *b == b'4').unwrap();
    changed[at] = b'5';
    let (status, _) = post(
        svc.addr,
        "/github",
        &[
            ("X-GitHub-Event", "deployment_protection_rule"),
            ("X-GitHub-Delivery", "d-2"),
            ("X-Hub-Signature-256", &sig),
        ],
        &changed,
    );
    assert_eq!(status, 401);
    // no signature at all
    let (status, _) = post(
        svc.addr,
        "/github",
        &[
            ("X-GitHub-Event", "deployment_protection_rule"),
            ("X-GitHub-Delivery", "d-3"),
        ],
        &body,
    );
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(gh.server.requests().is_empty(), "nothing reached GitHub");
    assert_eq!(policy_records(&p).await, 0, "nothing was evaluated");
    assert_eq!(
        svc.service
            .stats
            .unauthenticated
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    // the same delivery id, properly signed, is then handled: refusals are not remembered
    assert_eq!(deliver(svc.addr, "d-1", &body, SECRET).0, 202);
    assert_eq!(reviews(&gh, 1).await.len(), 1);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_delivery_is_handled_once() {
    let p = Pipeline::new();
    p.compliant().await;
    let gh = GitHubApp::start(APP_ID, INSTALLATION, facts());
    let svc = start(judge(&p, local(&p)), &gh, 4).await;
    let body = payload(&gh.url(), 42, COMMIT);
    assert_eq!(deliver(svc.addr, "d-same", &body, SECRET).0, 202);
    // while it is being judged, and after
    let (status, answer) = deliver(svc.addr, "d-same", &body, SECRET);
    assert_eq!(
        (status, answer.contains("duplicate")),
        (200, true),
        "{answer}"
    );
    assert_eq!(reviews(&gh, 1).await.len(), 1);
    let (status, _) = deliver(svc.addr, "d-same", &body, SECRET);
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gh.reviews().len(), 1, "one review for one delivery");
    assert_eq!(policy_records(&p).await, 2, "one decision for one delivery");
    svc.stop().await;
}

/// The same delivery sent 20 times at once (a replay racing the original): judged and
/// reviewed exactly once; every other copy is answered as a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_racing_its_replays_is_handled_exactly_once() {
    let p = Pipeline::new();
    p.compliant().await;
    let gh = GitHubApp::start(APP_ID, INSTALLATION, facts());
    let svc = start(judge(&p, local(&p)), &gh, 4).await;
    let addr = svc.addr;
    let body = payload(&gh.url(), 42, COMMIT);
    let statuses: Vec<u16> = tokio::task::spawn_blocking(move || {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..20)
                .map(|_| s.spawn(|| deliver(addr, "d-race", &body, SECRET).0))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    })
    .await
    .unwrap();
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(reviews(&gh, 1).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gh.reviews().len(), 1, "one review");
    assert_eq!(policy_records(&p).await, 2, "one decision and its VSA");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_is_a_rejection_with_the_reason() {
    let p = Pipeline::new();
    let closed = custody_test_support::closed_port();
    let store = custody_store::open_gitlab_store(
        &format!("gitlab://{closed}/acme/app/evidence"),
        &custody_store::GitLabOptions {
            attempts: 1,
            connect_timeout: Duration::from_secs(2),
            ..custody_store::GitLabOptions::default()
        },
    )
    .unwrap();
    let gh = GitHubApp::start(APP_ID, INSTALLATION, facts());
    let svc = start(judge(&p, store), &gh, 4).await;
    deliver(svc.addr, "d-store", &payload(&gh.url(), 42, COMMIT), SECRET);
    let r = reviews(&gh, 1).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].1["state"], "rejected", "never an approval");
    let comment = r[0].1["comment"].as_str().unwrap();
    assert!(
        comment.contains("reading the evidence store failed 3 times"),
        "{comment}"
    );
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_api_that_is_down_is_retried_then_rejected() {
    let p = Pipeline::new();
    p.compliant().await;
    let gh = GitHubApp::start(APP_ID, INSTALLATION, facts());
    let svc = start(judge(&p, local(&p)), &gh, 4).await;
    // down for one read: the retry gets through
    gh.facts_down(1);
    deliver(svc.addr, "d-blip", &payload(&gh.url(), 42, COMMIT), SECRET);
    let r = reviews(&gh, 1).await;
    assert_eq!(r[0].1["state"], "approved", "{}", r[0].1);
    // down for good: three tries, then a rejection that says why
    gh.facts_down(usize::MAX);
    deliver(svc.addr, "d-down", &payload(&gh.url(), 43, COMMIT), SECRET);
    let r = reviews(&gh, 2).await;
    assert_eq!(r[1].0, 43);
    assert_eq!(r[1].1["state"], "rejected");
    let comment = r[1].1["comment"].as_str().unwrap();
    assert!(
        comment.contains("gathering the gate's facts failed 3 times") && comment.contains("503"),
        "{comment}"
    );
    gh.facts_down(0);
    // the review endpoint down once: retried, reviewed once
    gh.reviews_down(1);
    deliver(
        svc.addr,
        "d-review",
        &payload(&gh.url(), 44, COMMIT),
        SECRET,
    );
    let r = reviews(&gh, 3).await;
    assert_eq!(r.iter().filter(|(run, _)| *run == 44).count(), 1);
    svc.stop().await;
}

/// GitHub asks the App and the reviewers at once: while only the approval rules fail,
/// the gate waits for the humans instead of rejecting, and approves once they have;
/// anything else rejects at once, waiting or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_waits_for_the_reviewers_but_not_for_anything_else() {
    let p = Pipeline::new();
    p.compliant().await;
    let nobody = Facts::approved("production", &[], "dev");
    let gh = GitHubApp::start(APP_ID, INSTALLATION, nobody.clone());
    let mut j = judge(&p, local(&p));
    j.settings.await_approvals = Duration::from_secs(30);
    j.settings.recheck = Duration::from_millis(100);
    let svc = start(j, &gh, 4).await;
    deliver(svc.addr, "w-1", &payload(&gh.url(), 42, COMMIT), SECRET);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        gh.reviews().is_empty(),
        "no review while the reviewers have not approved"
    );
    assert_eq!(policy_records(&p).await, 0, "nothing stored while waiting");
    let approvals_read = gh
        .server
        .targets()
        .iter()
        .filter(|t| t.ends_with("/runs/42/approvals"))
        .count();
    assert!(approvals_read >= 2, "it looked again: {approvals_read}");
    gh.set_facts(facts());
    let r = reviews(&gh, 1).await;
    assert_eq!(r[0].1["state"], "approved", "{}", r[0].1);
    assert_eq!(policy_records(&p).await, 2, "one decision, the last one");

    // failing tests are not something to wait for: rejected at once
    let key = p.key.clone();
    p.upload(
        "test",
        &[("junit.xml", junit(true)), ("lcov.info", lcov())],
        Some("production"),
        &key,
    )
    .await;
    gh.set_facts(nobody);
    let started = Instant::now();
    deliver(svc.addr, "w-2", &payload(&gh.url(), 43, COMMIT), SECRET);
    let r = reviews(&gh, 2).await;
    assert_eq!(r[1].1["state"], "rejected");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_callback_url_gets_no_token() {
    let p = Pipeline::new();
    p.compliant().await;
    let gh = GitHubApp::start(APP_ID, INSTALLATION, facts());
    let svc = start(judge(&p, local(&p)), &gh, 4).await;
    let mut v: Value = serde_json::from_slice(&payload(&gh.url(), 42, COMMIT)).unwrap();
    v["deployment_callback_url"] =
        json!("https://evil.example/repos/acme/app/actions/runs/42/deployment_protection_rule");
    let (status, body) = deliver(svc.addr, "d-evil", v.to_string().as_bytes(), SECRET);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not on the configured API"), "{body}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(gh.tokens_minted(), 0);
    svc.stop().await;
}

/// The compliant pipeline, and runner-guard verdicts of runs 1000..1200: the worst
/// case for the gate, one commit deployed by 200 runs, so every judgment reads the
/// commit's records of all of them.
async fn load_pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.compliant().await;
    let key = p.key.clone();
    for run in 1000..1200u64 {
        let mut ctx = p.context("deploy", Some("production"));
        ctx.pipeline_id = Some(run.to_string());
        p.runner_guard_in(ctx, "production", "pass", &key).await;
    }
    p
}

/// 200 deliveries from 20 clients at once, each for its own run; waits for the reviews,
/// checks none is lost or duplicated and that replays of all 200 change nothing.
/// Returns a line with the delivery-to-review latencies.
async fn load(addr: SocketAddr, gh: &Arc<GitHubApp>) -> String {
    let url = gh.url();
    let started = Instant::now();
    let sent: Vec<(u64, Duration)> = tokio::task::spawn_blocking(move || {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..20u64)
                .map(|t| {
                    let url = url.clone();
                    s.spawn(move || {
                        let mut out = Vec::new();
                        for i in 0..10u64 {
                            let run = 1000 + t * 10 + i;
                            let at = started.elapsed();
                            let (status, body) = deliver(
                                addr,
                                &format!("load-{run}"),
                                &payload(&url, run, COMMIT),
                                SECRET,
                            );
                            assert_eq!(status, 202, "{body}");
                            out.push((run, at));
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        })
    })
    .await
    .unwrap();
    // wait for all 200, noting when each review arrived
    let mut arrived = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while arrived.len() < 200 && Instant::now() < deadline {
        for (run, _) in gh.reviews() {
            arrived.entry(run).or_insert_with(|| started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reviews = gh.reviews();
    assert_eq!(reviews.len(), 200, "no review lost or duplicated");
    let runs: BTreeSet<u64> = reviews.iter().map(|(r, _)| *r).collect();
    assert_eq!(runs.len(), 200);
    let rejected: Vec<_> = reviews
        .iter()
        .filter(|(_, b)| b["state"] != "approved")
        .collect();
    assert!(rejected.is_empty(), "{rejected:?}");
    // replays of every delivery: all duplicates
    let url = gh.url();
    tokio::task::spawn_blocking(move || {
        for run in 1000..1200u64 {
            let (status, _) = deliver(
                addr,
                &format!("load-{run}"),
                &payload(&url, run, COMMIT),
                SECRET,
            );
            assert_eq!(status, 200);
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gh.reviews().len(), 200);
    let mut latency: Vec<Duration> = sent
        .iter()
        .map(|(run, at)| arrived[run].saturating_sub(*at))
        .collect();
    latency.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "200 deliveries at 20 concurrent: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms; all reviewed in {:.1} s; {} installation token(s) minted",
        ms(latency[latency.len() / 2]),
        ms(latency[latency.len() * 95 / 100 - 1]),
        ms(latency[latency.len() - 1]),
        arrived.values().max().unwrap().as_secs_f64(),
        gh.tokens_minted()
    )
}

/// The load, in process: no review lost or duplicated. Prints the latencies (no timing
/// is asserted; BENCHMARKS.md records the release binary's, below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_200_deliveries_at_20_concurrent_lose_and_duplicate_nothing() {
    let p = load_pipeline().await;
    let gh = Arc::new(GitHubApp::start(APP_ID, INSTALLATION, facts()));
    let svc = start(judge(&p, local(&p)), &gh, 8).await;
    eprintln!(
        "gate load (debug, in process): {}",
        load(svc.addr, &gh).await
    );
    // one token minted, reused across the 200 (at most one per concurrent first use)
    assert!(gh.tokens_minted() <= 8, "{}", gh.tokens_minted());
    svc.stop().await;
}

/// The same load against a built `custody-gate serve` (`CUSTODY_GATE_BIN`, e.g. a
/// release build), with its configuration file: the
/// figure BENCHMARKS.md records. Run with
/// `CUSTODY_GATE_BIN=target/release/custody-gate cargo test -p custody-gate --test it gate_binary_load -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: needs CUSTODY_GATE_BIN"]
async fn gate_binary_load() {
    let Some(bin) = std::env::var_os("CUSTODY_GATE_BIN") else {
        panic!("set CUSTODY_GATE_BIN to a custody-gate binary");
    };
    let p = load_pipeline().await;
    let gh = Arc::new(GitHubApp::start(APP_ID, INSTALLATION, facts()));
    let dir = p.dir.path();
    std::fs::write(dir.join("gate.key"), p.key.to_pkcs8_pem().unwrap()).unwrap();
    std::fs::write(dir.join("gate.pub"), p.key.public().pem()).unwrap();
    std::fs::write(dir.join("app.pem"), app_key_pem()).unwrap();
    std::fs::write(
        dir.join("gate.yaml"),
        format!(
            "store: {}\ntrustedKeys: [gate.pub]\ndata: [{}]\nrecord:\n  signingKey: gate.key\nconcurrency: 8\ngithub:\n  apiUrl: {}\n  appId: {APP_ID}\n  privateKeyFile: app.pem\n",
            p.store_path().display(),
            crate::support::data("policy-data.yaml").display(),
            gh.url()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(bin)
        .args(["serve", "--config", "gate.yaml", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env("CUSTODY_GATE_GITHUB_WEBHOOK_SECRET", SECRET)
        .env("CUSTODY_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let mut said = Vec::new();
    let addr: SocketAddr = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("custody-gate serve exited: {said:?}");
        };
        if let Some(a) = line.strip_prefix("custody-gate: listening on ") {
            break a.trim().parse().unwrap();
        }
        said.push(line);
    };
    // one delivery on the idle service first: the latency of a lone deployment
    let url = gh.url();
    let t = Instant::now();
    tokio::task::spawn_blocking(move || {
        deliver(addr, "single", &payload(&url, 42, COMMIT), SECRET)
    })
    .await
    .unwrap();
    reviews(&gh, 1).await;
    eprintln!(
        "gate single delivery: reviewed in {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    gh.clear_reviews();
    eprintln!(
        "gate load (custody-gate serve, {}): {}",
        std::env::var("CUSTODY_GATE_BIN").unwrap_or_default(),
        load(addr, &gh).await
    );
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_accepted_deliveries() {
    let p = Pipeline::new();
    p.compliant().await;
    let gh = GitHubApp::start(APP_ID, INSTALLATION, facts());
    let svc = start(judge(&p, local(&p)), &gh, 2).await;
    for run in 0..5u64 {
        assert_eq!(
            deliver(
                svc.addr,
                &format!("s-{run}"),
                &payload(&gh.url(), 500 + run, COMMIT),
                SECRET
            )
            .0,
            202
        );
    }
    let addr = svc.addr;
    svc.stop().await;
    // every accepted delivery was reviewed before run() returned
    assert_eq!(gh.reviews().len(), 5);
    assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
}
