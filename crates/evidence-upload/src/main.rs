//! `evidence-upload`: turns a stage's output into signed, retention-locked evidence.
//!
//! The step is specified in the project's issue #3 and not built yet: this binary exists
//! so the workspace, packaging and CI layout are in place. It refuses to run rather than
//! pretend to pass.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "evidence-upload: not available in this build yet (tracked in issue #3); no check was performed"
    );
    ExitCode::from(2)
}
