//! The GitLab path against the loopback GitLab the policy suite uses (its documented
//! deployment, protected environment and commit shapes), with the approval endpoint
//! recorded: `gitlab_deployment` + judge + approve (what `custody gate gitlab-approve`
//! runs), and the job-event webhook.

use std::sync::Arc;
use std::time::{Duration, Instant};

use custody_evidence::{KeyIdScheme, PipelineContext, Platform};
use custody_gate::gitlab::GitLab;
use custody_gate::judge::{Judge, Settings};
use custody_gate::serve::{Limits, Service, gitlab_deployment};
use custody_http::Secret;
use custody_policy::check::RecordSettings;
use custody_store::{AnyStore, LocalStore, Retention};
use custody_test_support::http::{Recorded, Server};
use serde_json::json;

use crate::github::post;
use crate::support::{COMMIT, Pipeline, data, junit, lcov};

const PROJECT: &str = "/api/v4/projects/acme%2Fapp";
const TOKEN: &str = "glpat-gate-service-account";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(data(name)).unwrap()
}

/// The policy suite's GitLab routes, plus the approval endpoint; every call needs the
/// service account's token.
fn gitlab() -> Server {
    let routes: Vec<(String, String)> = vec![
        (
            format!("{PROJECT}/deployments/17"),
            fixture("gitlab/deployment.json"),
        ),
        (
            format!("{PROJECT}/deployments"),
            fixture("gitlab/deployments.json"),
        ),
        (
            format!("{PROJECT}/protected_environments/production"),
            fixture("gitlab/protected-environment.json"),
        ),
        (
            format!("{PROJECT}/repository/commits/{COMMIT}"),
            fixture("gitlab/commit.json"),
        ),
        (
            format!("{PROJECT}/repository/commits/{COMMIT}/merge_requests"),
            fixture("gitlab/commit-mrs.json"),
        ),
        (
            format!("{PROJECT}/merge_requests/1/commits"),
            fixture("gitlab/mr-commits.json"),
        ),
    ];
    Server::handle(move |req: &Recorded| {
        if req.headers.get("private-token").map(String::as_str) != Some(TOKEN) {
            return (401, r#"{"message":"401 Unauthorized"}"#.into());
        }
        if req.method == "POST" && req.path() == format!("{PROJECT}/deployments/17/approval") {
            return (
                201,
                json!({"user": {"username": "custody-gate"}, "status": "approved", "comment": ""})
                    .to_string(),
            );
        }
        match routes.iter().find(|(p, _)| p == req.path()) {
            Some((_, body)) if req.method == "GET" => (200, body.clone()),
            _ => (404, r#"{"message":"404 Not Found"}"#.into()),
        }
    })
}

fn service_account(server: &Server) -> GitLab {
    GitLab {
        api_url: server.url("/api/v4"),
        token: Secret::new(TOKEN.to_owned()),
        webhook_token: Some(Secret::new("hook-token".to_owned())),
        represented_as: None,
        net: custody_http::net::Net::default(),
        attempts: 2,
        backoff: Duration::from_millis(10),
    }
}

fn judge(p: &Pipeline) -> Judge {
    Judge {
        store: Arc::new(AnyStore::Local(
            LocalStore::create(p.store_path().to_str().unwrap()).unwrap(),
        )),
        trusted_keys: p.trusted(),
        policies: p.policies(json!({})),
        record: Some(RecordSettings {
            key: Arc::new(p.key.clone()),
            keyid_scheme: KeyIdScheme::Empty,
            retention: Retention::hipaa_default().unwrap(),
        }),
        settings: Settings {
            backoff: Duration::from_millis(10),
            ..Settings::default()
        },
    }
}

/// The compliant pipeline, its runner-guard verdict from GitLab pipeline 502 (the one
/// the deployment's job ran in).
async fn pipeline() -> Pipeline {
    let p = Pipeline::new();
    p.compliant().await;
    let ctx = PipelineContext {
        platform: Some(Platform::Gitlab),
        repository: Some("acme/app".into()),
        commit: Some(COMMIT.into()),
        pipeline_id: Some("502".into()),
        job: Some("deploy".into()),
        environment: Some("production".into()),
        source: Some("flags".into()),
        ..PipelineContext::default()
    };
    let key = p.key.clone();
    p.runner_guard_in(ctx, "production", "pass", &key).await;
    p
}

/// The approval calls the server received, as form fields.
fn approvals(server: &Server) -> Vec<Vec<(String, String)>> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path().ends_with("/approval"))
        .map(|r| {
            url::form_urlencoded::parse(&r.body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[tokio::test]
async fn approve_a_compliant_blocked_deployment_and_reject_a_failing_one() {
    let p = pipeline().await;
    let server = gitlab();
    let gl = service_account(&server);
    let j = judge(&p);
    let dep = gl.deployment("acme/app", 17).await.unwrap();
    assert_eq!(dep.status, "blocked");
    let d = gitlab_deployment(&gl, "acme/app", &dep).unwrap();
    let judgment = j.judge(&d).await;
    assert!(judgment.approve, "{}", judgment.comment);
    gl.approve("acme/app", dep.id, judgment.approve, &judgment.comment)
        .await
        .unwrap();
    // the human approvals came from the deployment itself
    let decision = &judgment.decisions[0].1;
    let approvers: Vec<&str> = decision
        .approvals
        .iter()
        .map(|a| a.approver.as_str())
        .collect();
    assert_eq!(approvers, ["alice", "bob"]);

    // the same commit's tests then fail: rejected, naming the rule
    let key = p.key.clone();
    p.upload(
        "test",
        &[("junit.xml", junit(true)), ("lcov.info", lcov())],
        Some("production"),
        &key,
    )
    .await;
    let judgment = j.judge(&d).await;
    assert!(!judgment.approve);
    gl.approve("acme/app", dep.id, judgment.approve, &judgment.comment)
        .await
        .unwrap();
    let calls = approvals(&server);
    assert_eq!(calls.len(), 2);
    assert_eq!(field(&calls[0], "status"), "approved");
    assert!(field(&calls[0], "comment").starts_with("Custody gate: approved."));
    assert_eq!(field(&calls[1], "status"), "rejected");
    assert!(
        field(&calls[1], "comment").contains("- tests-passed:"),
        "{:?}",
        calls[1]
    );
}

#[tokio::test]
async fn a_wrong_token_is_an_error_not_an_approval() {
    let server = gitlab();
    let mut gl = service_account(&server);
    gl.token = Secret::new("glpat-wrong".to_owned());
    let err = gl.approve("acme/app", 17, true, "x").await.unwrap_err();
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("glpat-wrong"), "{err}");
    assert!(
        approvals(&server).is_empty()
            || server
                .requests()
                .iter()
                .all(|r| r.headers.get("private-token").map(String::as_str) != Some(TOKEN))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_event_webhook_approves_the_blocked_deployment_once() {
    let p = pipeline().await;
    let server = gitlab();
    let service = Service::new(
        judge(&p),
        None,
        Some(service_account(&server)),
        Limits::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(Arc::clone(&service).run(listener, async {
        let _ = rx.await;
    }));
    // GitLab's job event for the deployment job (webhook_events.md's shape, trimmed)
    let event = json!({
        "object_kind": "build", "ref": "main", "tag": false, "before_sha": "0",
        "sha": COMMIT, "build_id": 664, "build_name": "deploy", "build_stage": "deploy",
        "build_status": "manual", "project_id": 380, "project_name": "Acme / App",
        "environment": {"name": "production", "action": "start", "deployment_tier": "production"},
        "repository": {"name": "app", "homepage": "http://gitlab.example.com/acme/app"}
    })
    .to_string();
    let headers = |token: &'static str, uuid: &'static str| {
        vec![
            ("X-Gitlab-Event", "Job Hook"),
            ("X-Gitlab-Token", token),
            ("X-Gitlab-Event-UUID", uuid),
        ]
    };
    let body = event.clone();
    let (bad, ok, again) = tokio::task::spawn_blocking(move || {
        (
            post(addr, "/gitlab", &headers("wrong", "u-1"), body.as_bytes()),
            post(
                addr,
                "/gitlab",
                &headers("hook-token", "u-1"),
                body.as_bytes(),
            ),
            post(
                addr,
                "/gitlab",
                &headers("hook-token", "u-1"),
                body.as_bytes(),
            ),
        )
    })
    .await
    .unwrap();
    assert_eq!(bad.0, 401);
    assert_eq!(ok.0, 202, "{}", ok.1);
    assert_eq!(again.0, 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    while approvals(&server).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let calls = approvals(&server);
    assert_eq!(calls.len(), 1);
    assert_eq!(field(&calls[0], "status"), "approved", "{:?}", calls[0]);
    let _ = tx.send(());
    done.await.unwrap().unwrap();
}
