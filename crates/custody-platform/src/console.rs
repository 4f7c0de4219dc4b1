//! Printing in CI without letting evidence talk to the runner.
//!
//! GitHub's runner reads every line of a step's output, on stdout and stderr, as a
//! possible workflow command: a line that starts with `::` after leading whitespace
//! (`::error::`, `::add-mask::`, `::stop-commands::`, `::set-output`), or that holds the
//! legacy `##[command]` form anywhere. GitLab reads ANSI-escaped `section_start:`
//! markers. Custody prints text that comes from evidence (JSON keys in parse errors,
//! package names and CVE ids in rule messages, commits and names from records), so an
//! attacker who writes a report could write commands into the job. Every line Custody
//! prints goes through [`neutralize`]: a line that would start with `::` gets a
//! zero-width space between the colons, `##[` gets one between the hashes, carriage
//! returns and escape characters are written as `\r` and `\e`. Custody's own workflow
//! commands, built from escaped data by [`crate::ci`], are written with [`command`].

use std::borrow::Cow;
use std::io::Write;

/// `println!` for Custody: never panics on a closed stdout (`| head`), and the line is
/// neutralized ([`out_line`]).
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {{
        $crate::console::out_line(&format!($($t)*));
    }};
}

/// `eprintln!` for Custody: every line neutralized, so text from evidence cannot be a
/// workflow command ([`err_line`]).
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => {{
        $crate::console::err_line(&format!($($t)*));
    }};
}

const ZWSP: char = '\u{200B}';

/// `text` with every line made inert to the CI runner (see the module docs).
pub fn neutralize(text: &str) -> Cow<'_, str> {
    neutralize_with(text, true)
}

fn neutralize_with(text: &str, escapes: bool) -> Cow<'_, str> {
    let esc = escapes && text.contains('\x1b');
    if !(esc || text.contains("::") || text.contains("##[") || text.contains('\r')) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut line = line.replace('\r', "\\r").replace("##[", "#\u{200B}#[");
        if escapes {
            line = line.replace('\x1b', "\\e");
        }
        let body = line.trim_start();
        let lead = line.len() - body.len();
        match body.strip_prefix(':') {
            Some(rest) if rest.starts_with(':') => {
                out.push_str(line.get(..lead).unwrap_or_default());
                out.push(':');
                out.push(ZWSP);
                out.push_str(rest);
            }
            _ => out.push_str(&line),
        }
    }
    Cow::Owned(out)
}

/// Writes a line to stdout, neutralized; a closed stdout (`| head`) is ignored, any
/// other failure is kept for [`stdout_error`].
pub fn out_line(text: &str) {
    // stdout is line-buffered: the newline flushes, so a failed write shows here
    if let Err(e) = writeln!(std::io::stdout().lock(), "{}", neutralize(text)) {
        note_stdout_error(&e);
    }
}

/// Writes `bytes` to stdout as they are; failures as in [`out_line`].
pub fn out_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        note_stdout_error(&e);
    }
}

static STDOUT_ERROR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn note_stdout_error(e: &std::io::Error) {
    // a reader that stopped reading (`| head`) wanted no more: not a failure
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        let _ = STDOUT_ERROR.set(e.to_string());
    }
}

/// The first failure to write stdout other than a closed pipe, such as a full disk
/// under `> answer.json`. Every binary checks it before it exits, so an answer that
/// was lost on its way out never ends with a success status.
pub fn stdout_error() -> Option<&'static str> {
    STDOUT_ERROR.get().map(String::as_str)
}

/// What a binary's `main` returns: `code`, unless writing stdout failed
/// ([`stdout_error`]), which says so on stderr and exits 2 (every binary's error
/// status), whatever the command did.
pub fn exit_status(program: &str, code: std::process::ExitCode) -> std::process::ExitCode {
    match stdout_error() {
        Some(e) => {
            err_line(&format!(
                "{program}: error: writing standard output failed: {e}"
            ));
            std::process::ExitCode::from(2)
        }
        None => code,
    }
}

/// Writes a line to stderr, neutralized.
pub fn err_line(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{}", neutralize(text));
}

/// Writes one of Custody's own workflow commands (an annotation or a mask, its data
/// escaped by [`crate::ci`]) to stderr, as is.
pub fn command(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// A writer that neutralizes what passes through it: for log subscribers
/// (`tracing_subscriber::fmt::layer().with_writer(|| NeutralWriter(std::io::stderr()))`).
#[derive(Debug)]
pub struct NeutralWriter<W>(pub W);

impl<W: Write> Write for NeutralWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // the log's own colours stay: escape characters in a log line are the
        // formatter's, not evidence; lines and `::` are neutralized all the same
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(neutralize_with(&text, false).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_commands_are_inert() {
        let evil = "unknown field `x\n::error title=X::pwned`, expected one of";
        let n = neutralize(evil);
        assert!(n.lines().all(|l| !l.trim_start().starts_with("::")), "{n}");
        assert!(n.contains(":\u{200B}:error title=X::pwned"), "{n}");
        for (input, want) in [
            ("  ::add-mask::x", "  :\u{200B}:add-mask::x"),
            ("a ##[error]b", "a #\u{200B}#[error]b"),
            ("a\rb", "a\\rb"),
            ("\x1b[0Ksection_start:1:x", "\\e[0Ksection_start:1:x"),
            ("\t::stop-commands::t", "\t:\u{200B}:stop-commands::t"),
        ] {
            assert_eq!(neutralize(input), want);
        }
        // ordinary text is untouched, and `::` inside a line is fine
        assert!(matches!(neutralize("plain text"), Cow::Borrowed(_)));
        assert_eq!(neutralize("std::io::Error"), "std::io::Error");
    }

    #[test]
    fn the_log_writer_keeps_colours_and_neutralizes_lines() {
        let mut w = NeutralWriter(Vec::new());
        w.write_all(b"\x1b[33mWARN\x1b[0m field=x\n::error::y\n")
            .unwrap();
        let s = String::from_utf8(w.0).unwrap();
        assert!(s.starts_with("\x1b[33mWARN\x1b[0m"), "{s:?}");
        assert!(s.contains("\n:\u{200B}:error::y"), "{s:?}");
    }
}
