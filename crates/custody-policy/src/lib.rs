//! Policy-as-code for Custody: Rego policies, evaluated with regorus, over facts that
//! Rust has already verified.
//!
//! - [`engine`]: the built-in policy library (embedded `policies/*.rego`), user
//!   policies and data, evaluation ([`PolicySet`]).
//! - [`input`]: the policy input, a wire format with JSON Schema.
//! - [`decision`]: the decision document and its stored predicate.
//! - [`facts`]: gathering verified facts: evidence records from the store (envelope
//!   signatures, material digests), cosign signatures from an OCI registry, approvals
//!   and authorship from GitHub (octocrab) and GitLab (the `gitlab` crate), or an
//!   offline file marked unverified.
//! - [`check`]: one gate from flags to a stored, signed decision.
//! - [`testing`]: `custody policy test`, `opa test`-style Rego unit tests.
//!
//! The engine has no `crypto.*` builtins and `http.send` does nothing: everything
//! cryptographic happens in Rust before evaluation, and the policies see only facts.

pub mod check;
pub mod decision;
pub mod engine;
pub mod error;
pub mod facts;
pub mod gate;
pub mod input;
pub mod schema;
pub mod testing;
pub mod vsa;

pub use decision::{Decision, RuleResult, Status, Verdict};
pub use engine::{Evaluation, Evaluator, Module, PolicySet};
pub use error::PolicyError;
pub use gate::Gate;
pub use input::PolicyInput;
