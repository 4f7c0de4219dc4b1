//! `custody`: the command line for people — key generation, attestations,
//! verification and audit queries. Parsing and exit codes live here; the work is in
//! [`custody::run`](cli::run).

/// `out!` and `errln!`: Custody's neutralizing `println!`/`eprintln!`.
#[macro_use]
extern crate custody_platform;

mod cli;
mod commands;
mod exit;
mod output;

use std::process::ExitCode;

fn main() -> ExitCode {
    custody_platform::console::exit_status("custody", run_main())
}

fn run_main() -> ExitCode {
    let args = <cli::Cli as clap::Parser>::parse();
    output::init_logging(args.verbose);
    match cli::run(args) {
        Ok(code) => code.into(),
        Err(err) => {
            let code = exit::classify(&err);
            errln!("error: {}", output::render_error(&err));
            code.into()
        }
    }
}
