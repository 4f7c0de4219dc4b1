//! The two gates: before the human approval and before the deploy.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// When policy-check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Gate {
    /// Before the protected environment asks a human: everything but approvals.
    PreApproval,
    /// Right before the deploy: everything, approvals and separation of duties included.
    PreDeploy,
}

impl Gate {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreApproval => "pre-approval",
            Self::PreDeploy => "pre-deploy",
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Gate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pre-approval" => Ok(Self::PreApproval),
            "pre-deploy" => Ok(Self::PreDeploy),
            other => Err(format!("gate `{other}`: use pre-approval or pre-deploy")),
        }
    }
}
