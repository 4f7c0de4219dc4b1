//! The deploy gate outside the pipeline's YAML.
//!
//! policy-check is a job in the workflow, so whoever can edit the workflow can remove
//! it. The platforms offer enforcement points a project's YAML cannot remove, and this
//! crate answers them with the same gate policy-check runs:
//!
//! - **GitHub custom deployment protection rules** ([`github`]): a GitHub App that
//!   GitHub asks (`deployment_protection_rule` webhook) before any job runs against a
//!   protected environment; it approves or rejects the run through the review endpoint.
//! - **GitLab protected environments with required approvals** ([`gitlab`]): a service
//!   account the environment lists as an approver approves or rejects the blocked
//!   deployment through the Deployments approval API, from a job event webhook or from
//!   `custody gate gitlab-approve`.
//!
//! [`judge::Judge`] is the gate: the commit's artifacts found in the store from verified
//! records, policy-check's pre-deploy gate (`custody_policy::check`) for each, with the
//! platform's facts read with the App's (or service account's) credentials, the
//! decision and its VSA stored. [`serve`] is the HTTP service around it: webhook
//! signatures checked in constant time before anything is parsed, deliveries handled
//! once, bounded concurrency, a health endpoint, graceful shutdown.
//!
//! Every failure rejects: an unreachable store, a platform API that stays down, a
//! decision that cannot be stored. Nothing but an `allow` of every artifact approves.

pub mod config;
pub mod github;
pub mod gitlab;
pub mod judge;
mod retry;
pub mod serve;
pub mod webhook;

pub use config::{Config, ConfigError};
pub use judge::{Deployment, Judge, Judgment};
pub use serve::{Service, Stats};
