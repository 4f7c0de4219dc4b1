//! Test support shared by Custody's test suites; a dev-dependency only, never shipped.
//!
//! [`FaultProxy`]: a loopback HTTP/1.1 proxy put between a step (or a store client) and
//! a real server (moto for S3, the GitLab stand-in), which breaks chosen requests the
//! way networks and servers break them: a connection reset halfway through an upload,
//! a 500 or 503 answer, a response that never comes, and a server that performs the
//! write but whose answer is lost.
//!
//! [`TestCa`] and [`TlsFront`]: a private CA minted per test and an HTTPS front, with a
//! certificate from it, for any loopback server: the private-CA tests of every backend
//! and platform client.
//!
//! [`http`]: a tiny loopback stand-in for third-party HTTP APIs (fixed routes, every
//! request recorded) and [`closed_port`], a loopback address nothing listens on.
//!
//! [`oidc`]: a test OIDC issuer: its keys, JWKS documents, GitHub-shaped claims and
//! signed (or forged, or unsigned) tokens.
//!
//! [`github_app`]: a GitHub stand-in for a GitHub App: App JWT checks, installation
//! tokens, the facts policy-check reads and the deployment protection rule reviews.
//!
//! [`phi`]: a synthetic corpus of PHI (FHIR, HL7 v2, JUnit, SBOM) and example secrets.
//!
//! [`moto`]: moto's server on loopback, and its KMS driven by boto3.
//!
//! [`tiers`]: custody-guard's example tier model pointed at loopback stand-ins.

#![allow(clippy::expect_used)]

mod fault;
pub mod github_app;
pub mod http;
pub mod moto;
pub mod oidc;
pub mod phi;
pub mod tiers;
mod tls;
pub mod tsa;

pub use fault::{Fault, FaultProxy, Matcher, Rule, Seen};
pub use http::{Recorded, Server, closed_port};
pub use tls::{TestCa, TlsFront};
