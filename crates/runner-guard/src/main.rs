//! `runner-guard`: fails a job whose runner is not isolated for its tier.
//!
//! The step is specified in the project's issue #6 and not built yet: this binary exists
//! so the workspace, packaging and CI layout are in place. It refuses to run rather than
//! pretend to pass.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "runner-guard: not available in this build yet (tracked in issue #6); no check was performed"
    );
    ExitCode::from(2)
}
