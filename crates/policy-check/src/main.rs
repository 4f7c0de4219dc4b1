//! `policy-check` command line: see the library ([`policy_check`]) for what it does
//! and its exit codes (0 allow, 1 deny, 2 error).

/// `out!` and `errln!`: Custody's neutralizing `println!`/`eprintln!`.
#[macro_use]
extern crate custody_platform;

use std::process::ExitCode;

use clap::Parser as _;
use custody_platform::context::ProcessEnv;
use custody_platform::step::{self, Outputs};
use policy_check::cli::Args;

fn main() -> ExitCode {
    custody_platform::console::exit_status("policy-check", run_main())
}

fn run_main() -> ExitCode {
    let args = Args::parse();
    let env = ProcessEnv;
    step::init_logging(&env);
    match policy_check::run(&args, &env) {
        Ok((report, code)) => {
            let dotenv = args.dotenv.as_deref();
            Outputs::new(&env, "policy-check: ", dotenv, "custody-policy.env").emit(&report);
            ExitCode::from(code)
        }
        Err(err) => {
            let message = format!("{err:#}");
            step::annotate_error(&env, None, &message);
            errln!("policy-check: error: {message}");
            ExitCode::from(policy_check::EXIT_ERROR)
        }
    }
}
