//! Output discipline: data on stdout, logs on stderr, no color when `NO_COLOR` is set.

use custody_platform::env_vars;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = std::env::var(env_vars::CUSTODY_LOG).unwrap_or_else(|_| default.to_owned());
    let no_color = std::env::var_os(env_vars::NO_COLOR).is_some_and(|v| !v.is_empty());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(|| custody_platform::console::NeutralWriter(std::io::stderr()))
        .with_ansi(!no_color)
        .without_time();
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(targets(&filter, default))
        .try_init();
}

/// `CUSTODY_LOG` as `level` or `target=level,…` directives. `Targets`, not `EnvFilter`:
/// the same syntax for what Custody documents, without a regex engine in the binary
/// (about 0.5 MB of a release build); a filter that does not parse falls back to the
/// default level.
fn targets(filter: &str, default: &str) -> Targets {
    filter
        .parse()
        .or_else(|_| default.parse())
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::WARN))
}

/// `outer: inner: root`, each cause once.
pub fn render_error(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// A plain text table: columns padded to their widest cell, two spaces apart.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out.truncate(out.trim_end().len());
    out
}

use custody_audit::report::wire_name;

/// An audit for people (a verdict, the findings, then chains and pipelines) or as the
/// verification document.
pub fn print_audit(audit: &custody_audit::Audit, format: crate::cli::Format) -> anyhow::Result<()> {
    match format {
        crate::cli::Format::Json => out!("{}", serde_json::to_string_pretty(audit)?),
        crate::cli::Format::Table => {
            let t = audit.totals;
            out!(
                "{}  {} error(s), {} warning(s): {} record(s) ({} named by the query, {} verified), {} material(s), {} chain(s), {} pipeline(s)",
                if audit.ok { "VERIFIED" } else { "FAILED" },
                t.errors,
                t.warnings,
                t.records,
                t.matched,
                t.verified,
                t.materials,
                t.chains,
                t.pipelines
            );
            if !audit.findings.is_empty() {
                let rows: Vec<Vec<String>> = audit
                    .findings
                    .iter()
                    .map(|f| {
                        vec![
                            wire_name(&f.severity),
                            wire_name(&f.check),
                            f.about.clone(),
                            f.message.clone(),
                        ]
                    })
                    .collect();
                out!("");
                out!(
                    "{}",
                    table(&["SEVERITY", "CHECK", "ABOUT", "WHAT IS WRONG"], &rows)
                );
            }
            if !audit.pipelines.is_empty() {
                let rows: Vec<Vec<String>> = audit
                    .pipelines
                    .iter()
                    .map(|p| {
                        vec![
                            p.key.clone(),
                            p.stages.join(","),
                            if p.missing.is_empty() {
                                "-".into()
                            } else {
                                p.missing.join(",")
                            },
                        ]
                    })
                    .collect();
                out!("");
                out!("{}", table(&["PIPELINE", "STAGES", "MISSING"], &rows));
            }
            if !audit.services.is_empty() {
                let rows: Vec<Vec<String>> = audit
                    .services
                    .iter()
                    .map(|s| {
                        vec![
                            s.name.clone(),
                            if s.stages.is_empty() {
                                "-".into()
                            } else {
                                s.stages.join(",")
                            },
                            if s.missing.is_empty() {
                                "-".into()
                            } else {
                                s.missing.join(",")
                            },
                        ]
                    })
                    .collect();
                out!("");
                out!("{}", table(&["SERVICE", "STAGES", "MISSING"], &rows));
            }
            if !audit.chains.is_empty() {
                let rows: Vec<Vec<String>> = audit
                    .chains
                    .iter()
                    .map(|c| {
                        vec![
                            c.id.clone(),
                            c.length.to_string(),
                            if c.intact { "intact" } else { "BROKEN" }.into(),
                        ]
                    })
                    .collect();
                out!("");
                out!("{}", table(&["CHAIN", "LENGTH", "STATE"], &rows));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tracing::Level;
    use tracing::level_filters::LevelFilter;

    use super::targets;

    #[test]
    fn log_filter_takes_levels_and_per_target_directives() {
        assert_eq!(
            targets("debug", "warn").default_level(),
            Some(LevelFilter::DEBUG)
        );
        let t = targets("custody_store=trace,info", "warn");
        assert!(t.would_enable("custody_store::s3", &Level::TRACE));
        assert!(t.would_enable("hyper", &Level::INFO));
        assert!(!t.would_enable("hyper", &Level::DEBUG));
        // a filter that does not parse falls back to the default, it does not fail
        assert_eq!(
            targets("a=b=c", "info").default_level(),
            Some(LevelFilter::INFO)
        );
    }
}
