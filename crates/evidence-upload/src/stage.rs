//! Stages and what evidence each accepts, and the HIPAA controls each supports.

use std::fmt;

use custody_evidence::Control;
use custody_formats::Kind;

/// A pipeline stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    Build,
    Test,
    Scan,
    Sign,
    Deploy,
    Custom(String),
}

impl Stage {
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "build" => Self::Build,
            "test" => Self::Test,
            "scan" => Self::Scan,
            "sign" => Self::Sign,
            "deploy" => Self::Deploy,
            other => {
                let ok = !other.is_empty()
                    && other.len() <= 64
                    && other
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(format!(
                        "stage `{other}`: use build, test, scan, sign, deploy, or a custom name of letters, digits, `-` and `_`"
                    ));
                }
                Self::Custom(other.to_owned())
            }
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Build => "build",
            Self::Test => "test",
            Self::Scan => "scan",
            Self::Sign => "sign",
            Self::Deploy => "deploy",
            Self::Custom(s) => s,
        }
    }

    /// The evidence kinds a stage's files may be; `None` means files are kept as raw
    /// materials without parsing (signatures, deployment manifests).
    pub fn kinds(&self) -> Option<&'static [Kind]> {
        match self {
            Self::Build => Some(&[Kind::Sbom]),
            Self::Test => Some(&[Kind::Tests, Kind::Coverage]),
            Self::Scan => Some(&[Kind::Scan]),
            Self::Sign | Self::Deploy => None,
            Self::Custom(_) => Some(&[Kind::Sbom, Kind::Tests, Kind::Coverage, Kind::Scan]),
        }
    }

    /// The HIPAA controls a record of this stage supports (Custody's mapping).
    pub fn controls(&self) -> Vec<Control> {
        let mut c = Control::baseline();
        match self {
            Self::Scan => c.extend([Control::RiskAnalysis, Control::RiskManagement]),
            Self::Sign => c.push(Control::Authentication),
            Self::Deploy => c.extend([Control::AccessManagement, Control::Authentication]),
            Self::Build | Self::Test | Self::Custom(_) => {}
        }
        c
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_parse_and_custom_names_are_safe() {
        assert_eq!(Stage::parse("scan").unwrap(), Stage::Scan);
        assert_eq!(
            Stage::parse("dast-zap").unwrap(),
            Stage::Custom("dast-zap".into())
        );
        for bad in ["", "../x", "a b", &"x".repeat(65)] {
            assert!(Stage::parse(bad).is_err(), "{bad}");
        }
        assert!(Stage::Scan.controls().contains(&Control::RiskAnalysis));
        assert!(
            Stage::Deploy
                .controls()
                .contains(&Control::AccessManagement)
        );
    }
}
