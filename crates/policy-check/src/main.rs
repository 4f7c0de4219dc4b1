//! `policy-check`: evaluates Rego policies before approval and before deploy.
//!
//! The step is specified in the project's issue #5 and not built yet: this binary exists
//! so the workspace, packaging and CI layout are in place. It refuses to run rather than
//! pretend to pass.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "policy-check: not available in this build yet (tracked in issue #5); no check was performed"
    );
    ExitCode::from(2)
}
