//! `custody`: the command line for people — key generation, attestations,
//! verification and audit queries. Parsing and exit codes live here; the work is in
//! [`custody::run`](cli::run).

/// `println!` that never panics: a closed stdout (`| head`) is not an error worth
/// dying over, and the data has nowhere to go anyway.
macro_rules! out {
    ($($t:tt)*) => {{
        custody_platform::console::out_line(&format!($($t)*));
    }};
}

/// `eprintln!` for Custody: every line neutralized, so text from evidence cannot be a
/// workflow command (`custody_platform::console`).
macro_rules! errln {
    ($($t:tt)*) => {{
        custody_platform::console::err_line(&format!($($t)*));
    }};
}

mod cli;
mod commands;
mod exit;
mod output;

use std::process::ExitCode;

fn main() -> ExitCode {
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
