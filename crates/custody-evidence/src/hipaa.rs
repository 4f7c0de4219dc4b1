//! HIPAA Security Rule citations a record can support. This mapping is Custody's
//! reading of 45 CFR Part 164, stated as such in reports; it is not legal advice.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::EvidenceError;

/// A HIPAA Security Rule standard or implementation specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Control {
    AuditControls,
    Integrity,
    IntegrityMechanism,
    Authentication,
    ActivityReview,
    RiskAnalysis,
    RiskManagement,
    AccessManagement,
    AccessControl,
    Retention,
}

impl Control {
    pub const ALL: [Control; 10] = [
        Control::AuditControls,
        Control::Integrity,
        Control::IntegrityMechanism,
        Control::Authentication,
        Control::ActivityReview,
        Control::RiskAnalysis,
        Control::RiskManagement,
        Control::AccessManagement,
        Control::AccessControl,
        Control::Retention,
    ];

    /// The citation within 45 CFR, e.g. `164.312(b)`.
    pub fn citation(self) -> &'static str {
        match self {
            Self::AuditControls => "164.312(b)",
            Self::Integrity => "164.312(c)(1)",
            Self::IntegrityMechanism => "164.312(c)(2)",
            Self::Authentication => "164.312(d)",
            Self::ActivityReview => "164.308(a)(1)(ii)(D)",
            Self::RiskAnalysis => "164.308(a)(1)(ii)(A)",
            Self::RiskManagement => "164.308(a)(1)(ii)(B)",
            Self::AccessManagement => "164.308(a)(4)",
            Self::AccessControl => "164.312(a)(1)",
            Self::Retention => "164.316(b)(2)(i)",
        }
    }

    /// The standard's name.
    pub fn title(self) -> &'static str {
        match self {
            Self::AuditControls => "Audit controls",
            Self::Integrity => "Integrity",
            Self::IntegrityMechanism => "Mechanism to authenticate ePHI",
            Self::Authentication => "Person or entity authentication",
            Self::ActivityReview => "Information system activity review",
            Self::RiskAnalysis => "Risk analysis",
            Self::RiskManagement => "Risk management",
            Self::AccessManagement => "Information access management",
            Self::AccessControl => "Access control",
            Self::Retention => "Documentation retention",
        }
    }

    /// How Custody evidence supports the control.
    pub fn how(self) -> &'static str {
        match self {
            Self::AuditControls => "every pipeline stage leaves a signed record of what ran",
            Self::Integrity => {
                "content digests and write-once storage protect records from alteration"
            }
            Self::IntegrityMechanism => {
                "signatures and digests corroborate that evidence was not altered"
            }
            Self::Authentication => "signer and approver identities are recorded and verified",
            Self::ActivityReview => "records are queryable and exported as audit reports",
            Self::RiskAnalysis => "vulnerability scans assess the risk of each release",
            Self::RiskManagement => "policy thresholds block releases above the accepted risk",
            Self::AccessManagement => {
                "runner tiers and deploy authorization limit who and what reaches production"
            }
            Self::AccessControl => {
                "jobs run only on runners isolated for their tier, so software of one tier cannot reach another tier's systems"
            }
            Self::Retention => "records are retention-locked for six years",
        }
    }

    /// The controls every record supports by existing: audit trail, integrity, retention.
    pub fn baseline() -> Vec<Control> {
        vec![
            Self::AuditControls,
            Self::Integrity,
            Self::IntegrityMechanism,
            Self::Retention,
        ]
    }
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "§{}", self.citation())
    }
}

impl FromStr for Control {
    type Err = EvidenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s
            .trim()
            .trim_start_matches("45 CFR")
            .trim()
            .trim_start_matches('§')
            .trim();
        Self::ALL
            .into_iter()
            .find(|c| c.citation() == norm)
            .ok_or_else(|| {
                EvidenceError::UnknownControl(
                    s.to_owned(),
                    Self::ALL
                        .iter()
                        .map(|c| c.citation())
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            })
    }
}

impl Serialize for Control {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.citation())
    }
}

impl<'de> Deserialize<'de> for Control {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_parse_in_every_written_form() {
        for c in Control::ALL {
            assert_eq!(c.citation().parse::<Control>().unwrap(), c);
            assert_eq!(format!("{c}").parse::<Control>().unwrap(), c);
            assert_eq!(
                format!("45 CFR §{}", c.citation())
                    .parse::<Control>()
                    .unwrap(),
                c
            );
        }
        let e = "164.999".parse::<Control>().unwrap_err().to_string();
        assert!(e.contains("164.312(b)"), "{e}");
    }
}
