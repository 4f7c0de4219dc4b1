//! `custody gate serve`: the HTTP service around the [`Judge`].
//!
//! Routes:
//! - `POST /github`: GitHub App webhook deliveries. The `X-Hub-Signature-256` HMAC is
//!   checked over the raw body first (401 and nothing parsed or evaluated when it is
//!   wrong). `ping` gets 200; `deployment_protection_rule` (`requested`) is accepted
//!   (202) and judged in the background; other events get 202 and are ignored.
//! - `POST /gitlab`: GitLab job events (`X-Gitlab-Token` checked first, 401 otherwise);
//!   a deployment job whose deployment is blocked is judged, and the deployment approved
//!   or rejected as the service account.
//! - `GET /healthz`: 200 `{"status":"ok",…}` with counters; 503 while shutting down.
//!
//! A delivery is handled once: its id (`X-GitHub-Delivery`, `X-Gitlab-Event-UUID`) is
//! remembered (the last 100,000), and a deployment already being judged is not judged
//! twice at the same time. A delivery whose review could not be sent is forgotten, so
//! the platform's redelivery tries again. At most `concurrency` judgments run at once;
//! beyond `max_pending` accepted deliveries the service answers 503, which the platform
//! records as a failed delivery to redeliver.
//!
//! On shutdown the listener closes, open connections finish, and accepted deliveries
//! are judged and reviewed (up to `drain` long) before the process exits.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use custody_evidence::{PipelineContext, Platform};
use custody_policy::check::PlatformSource;
use custody_policy::facts::github::GitHubConfig;
use custody_policy::facts::gitlab::{GitLabConfig, TokenKind};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::github::App;
use crate::gitlab::GitLab;
use crate::judge::{Deployment, Judge, Judgment};
use crate::webhook::{self, GitLabJobEvent, ProtectionRuleEvent};

/// The largest webhook body read (GitHub caps payloads at 25 MB; a
/// `deployment_protection_rule` payload is a few KB).
const BODY_LIMIT: usize = 1 << 20;
/// How many delivery ids are remembered.
const SEEN_LIMIT: usize = 100_000;

/// Counters, for `/healthz` and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub received: AtomicU64,
    pub unauthenticated: AtomicU64,
    pub duplicates: AtomicU64,
    pub approved: AtomicU64,
    pub rejected: AtomicU64,
    /// Deliveries whose review could not be sent.
    pub failed: AtomicU64,
    pub in_flight: AtomicU64,
}

impl Stats {
    fn json(&self) -> serde_json::Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "received": g(&self.received),
            "unauthenticated": g(&self.unauthenticated),
            "duplicates": g(&self.duplicates),
            "approved": g(&self.approved),
            "rejected": g(&self.rejected),
            "failed": g(&self.failed),
            "inFlight": g(&self.in_flight),
        })
    }
}

/// Delivery ids seen (bounded, oldest forgotten first) and deployments being judged.
#[derive(Debug, Default)]
struct Seen {
    order: VecDeque<String>,
    ids: HashSet<String>,
    busy: HashSet<String>,
}

/// The service's settings.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Judgments at once.
    pub concurrency: usize,
    /// Accepted deliveries not yet reviewed, beyond which the service answers 503.
    pub max_pending: u64,
    /// How long shutdown waits for accepted deliveries.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            concurrency: 8,
            max_pending: 1000,
            drain: Duration::from_secs(60),
        }
    }
}

/// The gate service.
#[derive(Debug)]
pub struct Service {
    judge: Arc<Judge>,
    github: Option<App>,
    gitlab: Option<GitLab>,
    limits: Limits,
    permits: Semaphore,
    seen: Mutex<Seen>,
    jobs: Mutex<JoinSet<()>>,
    stopping: AtomicBool,
    pub stats: Stats,
}

type Answer = Response<Full<bytes::Bytes>>;

fn answer(status: StatusCode, body: &serde_json::Value) -> Answer {
    let mut rsp = Response::new(Full::new(bytes::Bytes::from(body.to_string())));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    rsp
}

impl Service {
    pub fn new(
        judge: Judge,
        github: Option<App>,
        gitlab: Option<GitLab>,
        limits: Limits,
    ) -> Arc<Self> {
        Arc::new(Self {
            judge: Arc::new(judge),
            github,
            gitlab,
            permits: Semaphore::new(limits.concurrency.max(1)),
            limits,
            seen: Mutex::new(Seen::default()),
            jobs: Mutex::new(JoinSet::new()),
            stopping: AtomicBool::new(false),
            stats: Stats::default(),
        })
    }

    /// Serves on `listener` until `shutdown` completes, then drains: open connections
    /// finish and accepted deliveries are judged and reviewed (up to `limits.drain`).
    pub async fn run(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "custody gate listening");
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let me = Arc::clone(&self);
                    let svc = hyper::service::service_fn(move |req| {
                        let me = Arc::clone(&me);
                        async move { Ok::<_, std::convert::Infallible>(me.route(req, peer).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .serve_connection(TokioIo::new(stream), svc);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        self.stopping.store(true, Ordering::SeqCst);
        drop(listener);
        tracing::info!("shutting down: finishing open connections and accepted deliveries");
        let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
        let mut jobs =
            std::mem::take(&mut *self.jobs.lock().unwrap_or_else(PoisonError::into_inner));
        let drained = tokio::time::timeout(self.limits.drain, async {
            while jobs.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::error!(
                left = jobs.len(),
                "shutdown: deliveries still being judged after the drain time were dropped; the platform will redeliver them"
            );
        }
        tracing::info!(stats = %self.stats.json(), "custody gate stopped");
        Ok(())
    }

    async fn route(self: Arc<Self>, req: Request<Incoming>, peer: SocketAddr) -> Answer {
        let path = req.uri().path().to_owned();
        match (req.method(), path.as_str()) {
            (&Method::GET, "/healthz") => {
                if self.stopping.load(Ordering::SeqCst) {
                    answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &json!({"status": "stopping"}),
                    )
                } else {
                    let mut body = self.stats.json();
                    if let Some(o) = body.as_object_mut() {
                        o.insert("status".into(), json!("ok"));
                    }
                    answer(StatusCode::OK, &body)
                }
            }
            (&Method::POST, "/github" | "/gitlab") => {
                if self.stopping.load(Ordering::SeqCst) {
                    return answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &json!({"status": "stopping"}),
                    );
                }
                let (parts, body) = req.into_parts();
                let body = match Limited::new(body, BODY_LIMIT).collect().await {
                    Ok(b) => b.to_bytes(),
                    Err(_) => {
                        return answer(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            &json!({"error": "the body is too large or was cut"}),
                        );
                    }
                };
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                let header = |name: &str| {
                    parts
                        .headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                if path == "/github" {
                    self.github_delivery(&body, &header, peer)
                } else {
                    self.gitlab_delivery(&body, &header, peer)
                }
            }
            (_, "/healthz" | "/github" | "/gitlab") => answer(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({"error": "method not allowed"}),
            ),
            _ => answer(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
        }
    }

    fn github_delivery(
        self: &Arc<Self>,
        body: &[u8],
        header: &dyn Fn(&str) -> Option<String>,
        peer: SocketAddr,
    ) -> Answer {
        let Some(app) = &self.github else {
            return answer(
                StatusCode::NOT_FOUND,
                &json!({"error": "GitHub is not configured"}),
            );
        };
        if !webhook::github_signature_valid(
            &app.webhook_secret,
            body,
            header("x-hub-signature-256").as_deref(),
        ) {
            self.stats.unauthenticated.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, "GitHub delivery refused: bad or missing X-Hub-Signature-256");
            return answer(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "bad or missing X-Hub-Signature-256"}),
            );
        }
        let event = header("x-github-event").unwrap_or_default();
        let Some(delivery) = header("x-github-delivery").filter(|d| !d.is_empty()) else {
            return answer(
                StatusCode::BAD_REQUEST,
                &json!({"error": "no X-GitHub-Delivery"}),
            );
        };
        match event.as_str() {
            "ping" => return answer(StatusCode::OK, &json!({"status": "pong"})),
            "deployment_protection_rule" => {}
            other => {
                tracing::info!(
                    delivery,
                    event = other,
                    "ignored: not a deployment_protection_rule event"
                );
                return answer(StatusCode::ACCEPTED, &json!({"status": "ignored"}));
            }
        }
        let ev: ProtectionRuleEvent = match serde_json::from_slice(body) {
            Ok(e) => e,
            Err(e) => {
                return answer(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": format!("not a deployment_protection_rule payload: {e}")}),
                );
            }
        };
        if ev.action != "requested" {
            return answer(StatusCode::ACCEPTED, &json!({"status": "ignored"}));
        }
        let (repository, run_id) = match ev.callback(&app.api_url) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(delivery, error = %e, "refused");
                return answer(StatusCode::BAD_REQUEST, &json!({"error": e}));
            }
        };
        let key = format!("github:{repository}:{run_id}:{}", ev.environment);
        if let Some(rsp) = self.admit(&delivery, &key) {
            return rsp;
        }
        let me = Arc::clone(self);
        self.spawn(async move {
            let ok = me.github_job(&ev, &repository, run_id, &delivery).await;
            me.finish(&delivery, &key, ok);
        });
        answer(StatusCode::ACCEPTED, &json!({"status": "accepted"}))
    }

    async fn github_job(
        &self,
        ev: &ProtectionRuleEvent,
        repository: &str,
        run_id: u64,
        delivery: &str,
    ) -> bool {
        let Some(app) = &self.github else {
            return false;
        };
        // the bound covers the platform calls too, token minting included
        let _permit = self.permits.acquire().await;
        let Some(installation) = ev.installation.as_ref().map(|i| i.id) else {
            tracing::error!(
                delivery,
                "no installation in the payload: the review cannot be sent"
            );
            return false;
        };
        let (crab, token) = match app.installation(installation).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(delivery, error = %e, "no installation token: the review cannot be sent");
                return false;
            }
        };
        let Some(commit) = ev.commit().map(str::to_owned) else {
            return self
                .github_review(
                    app,
                    &crab,
                    repository,
                    run_id,
                    &ev.environment,
                    false,
                    "Custody gate: rejected. The event names no commit.",
                    delivery,
                )
                .await;
        };
        let dep = Deployment {
            commit: commit.clone(),
            environment: ev.environment.clone(),
            context: PipelineContext {
                platform: Some(Platform::Github),
                repository: Some(repository.to_owned()),
                commit: Some(commit.clone()),
                ref_: ev
                    .deployment
                    .as_ref()
                    .and_then(|d| d.ref_.clone())
                    .or_else(|| ev.ref_.clone()),
                pipeline_id: Some(run_id.to_string()),
                job: Some("custody-gate".into()),
                environment: Some(ev.environment.clone()),
                source: Some("github-app".into()),
                ..PipelineContext::default()
            },
            platform: PlatformSource::GitHub(GitHubConfig {
                api_url: app.api_url.clone(),
                token: Some(token),
                repository: repository.to_owned(),
                run_id: Some(run_id),
                commit: Some(commit),
                environment: ev.environment.clone(),
                net: app.net.clone(),
            }),
        };
        let judgment = self.judge_off(dep).await;
        tracing::info!(
            delivery,
            repository,
            run_id,
            environment = %ev.environment,
            approve = judgment.approve,
            "judged"
        );
        self.github_review(
            app,
            &crab,
            repository,
            run_id,
            &ev.environment,
            judgment.approve,
            &judgment.comment,
            delivery,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn github_review(
        &self,
        app: &App,
        crab: &octocrab::Octocrab,
        repository: &str,
        run_id: u64,
        environment: &str,
        approve: bool,
        comment: &str,
        delivery: &str,
    ) -> bool {
        match app
            .review(crab, repository, run_id, environment, approve, comment)
            .await
        {
            Ok(()) => {
                self.count(approve);
                true
            }
            Err(e) => {
                tracing::error!(delivery, error = %e, "the review was not sent");
                false
            }
        }
    }

    fn gitlab_delivery(
        self: &Arc<Self>,
        body: &[u8],
        header: &dyn Fn(&str) -> Option<String>,
        peer: SocketAddr,
    ) -> Answer {
        let Some(gl) = &self.gitlab else {
            return answer(
                StatusCode::NOT_FOUND,
                &json!({"error": "GitLab is not configured"}),
            );
        };
        let Some(secret) = &gl.webhook_token else {
            return answer(
                StatusCode::NOT_FOUND,
                &json!({"error": "no GitLab webhook token is configured"}),
            );
        };
        if !webhook::gitlab_token_valid(secret, header("x-gitlab-token").as_deref()) {
            self.stats.unauthenticated.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, "GitLab delivery refused: bad or missing X-Gitlab-Token");
            return answer(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "bad or missing X-Gitlab-Token"}),
            );
        }
        let Some(delivery) = header("x-gitlab-event-uuid")
            .or_else(|| header("idempotency-key"))
            .filter(|d| !d.is_empty())
        else {
            return answer(
                StatusCode::BAD_REQUEST,
                &json!({"error": "no X-Gitlab-Event-UUID"}),
            );
        };
        let ev: GitLabJobEvent = match serde_json::from_slice(body) {
            Ok(e) => e,
            Err(_) => return answer(StatusCode::ACCEPTED, &json!({"status": "ignored"})),
        };
        let Some(environment) = ev.environment.clone().filter(|e| {
            ev.object_kind == "build" && e.action.as_deref().is_none_or(|a| a == "start")
        }) else {
            return answer(StatusCode::ACCEPTED, &json!({"status": "ignored"}));
        };
        let key = format!(
            "gitlab:{}:{}:{}",
            ev.project_id, environment.name, ev.build_id
        );
        if let Some(rsp) = self.admit(&delivery, &key) {
            return rsp;
        }
        let me = Arc::clone(self);
        self.spawn(async move {
            let ok = me.gitlab_job(&ev, &environment.name, &delivery).await;
            me.finish(&delivery, &key, ok);
        });
        answer(StatusCode::ACCEPTED, &json!({"status": "accepted"}))
    }

    async fn gitlab_job(&self, ev: &GitLabJobEvent, environment: &str, delivery: &str) -> bool {
        let Some(gl) = &self.gitlab else { return false };
        let project = ev.project();
        let dep = match gl
            .blocked_deployment_of_job(&project, environment, ev.build_id)
            .await
        {
            Ok(Some(d)) => d,
            Ok(None) => {
                tracing::info!(
                    delivery,
                    job = ev.build_id,
                    "no blocked deployment for this job: nothing to approve"
                );
                return true;
            }
            Err(e) => {
                tracing::error!(delivery, error = %e, "the deployment could not be read");
                return false;
            }
        };
        let _permit = self.permits.acquire().await;
        let (approve, comment) = match gitlab_deployment(gl, &project, &dep) {
            Ok(d) => {
                let j = self.judge_off(d).await;
                (j.approve, j.comment)
            }
            Err(comment) => (false, comment),
        };
        match gl.approve(&project, dep.id, approve, &comment).await {
            Ok(()) => {
                self.count(approve);
                true
            }
            Err(e) => {
                tracing::error!(delivery, error = %e, "the approval was not sent");
                false
            }
        }
    }

    /// Admits a delivery: `Some(answer)` when it is a duplicate, the service is full,
    /// or the deployment is already being judged.
    fn admit(&self, delivery: &str, key: &str) -> Option<Answer> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.ids.contains(delivery) || seen.busy.contains(key) {
            self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                delivery,
                key,
                "duplicate delivery: already handled or being handled"
            );
            return Some(answer(StatusCode::OK, &json!({"status": "duplicate"})));
        }
        if self.stats.in_flight.load(Ordering::SeqCst) >= self.limits.max_pending {
            tracing::warn!(
                delivery,
                "busy: refused with 503 for the platform to redeliver"
            );
            return Some(answer(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "busy"}),
            ));
        }
        seen.ids.insert(delivery.to_owned());
        seen.order.push_back(delivery.to_owned());
        if seen.order.len() > SEEN_LIMIT
            && let Some(old) = seen.order.pop_front()
        {
            seen.ids.remove(&old);
        }
        seen.busy.insert(key.to_owned());
        self.stats.in_flight.fetch_add(1, Ordering::SeqCst);
        None
    }

    /// Ends a delivery; one whose review was not sent is forgotten, so a redelivery
    /// is handled.
    fn finish(&self, delivery: &str, key: &str, reviewed: bool) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.busy.remove(key);
        if !reviewed {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            seen.ids.remove(delivery);
            seen.order.retain(|d| d != delivery);
        }
        self.stats.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// Judges on a blocking thread of the runtime: the gate's store reads hold
    /// single-threaded caches, so its future is not `Send`.
    async fn judge_off(&self, dep: Deployment) -> Judgment {
        let judge = Arc::clone(&self.judge);
        let handle = tokio::runtime::Handle::current();
        match tokio::task::spawn_blocking(move || handle.block_on(judge.judge(&dep))).await {
            Ok(j) => j,
            Err(e) => Judgment::reject(format!("The gate failed: {e}.")),
        }
    }

    fn count(&self, approve: bool) {
        if approve {
            self.stats.approved.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn spawn(&self, job: impl Future<Output = ()> + Send + 'static) {
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        // reap finished jobs so the set does not grow with the service's age
        while jobs.try_join_next().is_some() {}
        jobs.spawn(job);
    }
}

/// The deployment to judge for a GitLab deployment (its own approvals are the human
/// facts), or the rejection comment when it is not waiting for approval.
pub fn gitlab_deployment(
    gl: &GitLab,
    project: &str,
    dep: &crate::gitlab::DeploymentInfo,
) -> Result<Deployment, String> {
    if dep.status != "blocked" {
        return Err(format!(
            "Custody gate: deployment {} is {}, not blocked: nothing to approve.",
            dep.id, dep.status
        ));
    }
    let pipeline = dep
        .deployable
        .as_ref()
        .and_then(|j| j.pipeline.as_ref())
        .map(|p| p.id.to_string());
    Ok(Deployment {
        commit: dep.sha.clone(),
        environment: dep.environment.name.clone(),
        context: PipelineContext {
            platform: Some(Platform::Gitlab),
            repository: Some(project.to_owned()),
            commit: Some(dep.sha.clone()),
            ref_: dep.ref_.clone(),
            pipeline_id: pipeline,
            job: Some("custody-gate".into()),
            job_id: dep.deployable.as_ref().map(|j| j.id.to_string()),
            environment: Some(dep.environment.name.clone()),
            source: Some("gitlab-approver".into()),
            ..PipelineContext::default()
        },
        platform: PlatformSource::GitLab(GitLabConfig {
            api_url: gl.api_url.clone(),
            token: Some((TokenKind::Private, gl.token.clone())),
            project: project.to_owned(),
            deployment_id: Some(dep.id),
            job_id: dep.deployable.as_ref().map(|j| j.id),
            commit: Some(dep.sha.clone()),
            environment: dep.environment.name.clone(),
            net: gl.net.clone(),
        }),
    })
}
