//! The built-in rules.
//!
//! Secrets: patterns after gitleaks' default rule set (`config/gitleaks.toml`, MIT
//! licence: `private-key`, `aws-access-token`, `github-pat`, `github-fine-grained-pat`,
//! `github-oauth`, `github-app-token`, `github-refresh-token`, `gitlab-pat`,
//! `slack-*-token`, `jwt`, `generic-api-key` with its 3.5-bit entropy floor), written for
//! an ASCII byte-level DFA.
//!
//! PHI: the HIPAA Safe Harbor identifiers (45 CFR 164.514(b)(2)) that text shows:
//! SSNs (structurally valid ones), medical record numbers (labelled, plus configured
//! patterns), phone and fax numbers, e-mail and IP addresses, birth dates, health plan,
//! account and device numbers, URLs naming a patient; and FHIR `Patient` resources and
//! HL7 v2 `PID` segments. E-mail addresses, IP addresses and device numbers are
//! *contextual*: SBOMs name maintainers by e-mail and versions look like IP
//! addresses, so these count only on a line that speaks of a patient, or in a document
//! already found to hold patient data.

/// What a rule finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Secret,
    Phi,
}

/// An extra check of the matched value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    None,
    /// Area not 000, 666 or 9xx; group not 00; serial not 0000.
    Ssn,
    /// Shannon entropy of the value at least this many bits per byte.
    Entropy(f64),
}

/// A rule: the value is capture group `group` of `pattern` (0: the whole match).
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub kind: Kind,
    pub pattern: String,
    pub group: usize,
    pub check: Check,
    /// Counts only in patient context.
    pub contextual: bool,
    /// A match makes the rest of the file patient context.
    pub marks_context: bool,
}

fn rule(id: &str, kind: Kind, pattern: &str, group: usize) -> Rule {
    Rule {
        id: id.to_owned(),
        kind,
        pattern: pattern.to_owned(),
        group,
        check: Check::None,
        contextual: false,
        marks_context: false,
    }
}

/// A label and what follows it: `label`, optional quotes, spaces, `:`, `=`, `#`.
const SEP: &str = r#"["']?[ \t]*[:=#][ \t]*["']?[ \t]*"#;

/// Words that make a line speak of a patient.
pub const CONTEXT: &str = r"(?-u)(?i)patient|(?:\b)dob(?:\b)|date[ _-]?of[ _-]?birth|birth[ _-]?date|(?:\b)mrn(?:\b)|medical[ _-]?record|member[ _-]?id|subscriber|diagnos|(?:\b)ssn(?:\b)|social[ _-]?security";

/// The built-in rules, in report order.
pub fn builtin() -> Vec<Rule> {
    use Kind::{Phi, Secret};
    let mut v = vec![
        rule(
            "private-key",
            Secret,
            r"(?-u)-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----",
            0,
        ),
        rule(
            "aws-access-key-id",
            Secret,
            r"(?-u)\b((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
            1,
        ),
        rule(
            "aws-secret-access-key",
            Secret,
            &format!(r"(?-u)(?i)aws_?secret_?access_?key{SEP}([A-Za-z0-9/+=]{{40}})\b"),
            1,
        ),
        rule("github-pat", Secret, r"(?-u)\bghp_[0-9A-Za-z]{36}\b", 0),
        rule(
            "github-fine-grained-pat",
            Secret,
            r"(?-u)\bgithub_pat_[0-9A-Za-z_]{82}\b",
            0,
        ),
        rule("github-oauth", Secret, r"(?-u)\bgho_[0-9A-Za-z]{36}\b", 0),
        rule(
            "github-app-token",
            Secret,
            r"(?-u)\b(?:ghu|ghs)_[0-9A-Za-z]{36}\b",
            0,
        ),
        rule(
            "github-refresh-token",
            Secret,
            r"(?-u)\bghr_[0-9A-Za-z]{36}\b",
            0,
        ),
        rule("gitlab-pat", Secret, r"(?-u)\bglpat-[0-9A-Za-z_-]{20}\b", 0),
        rule(
            "slack-token",
            Secret,
            r"(?-u)\bxox[baprs]-[0-9A-Za-z-]{10,72}\b",
            0,
        ),
        rule(
            "jwt",
            Secret,
            r"(?-u)\beyJ[0-9A-Za-z_-]{10,}\.eyJ[0-9A-Za-z_-]{10,}\.[0-9A-Za-z_-]{10,}",
            0,
        ),
        Rule {
            check: Check::Entropy(3.5),
            ..rule(
                "generic-api-key",
                Secret,
                &format!(
                    r"(?-u)(?i)(?:api[_-]?key|secret[_-]?key|client[_-]?secret|access[_-]?token|auth[_-]?token|passwd|password){SEP}([0-9A-Za-z_+/=.-]{{16,128}})"
                ),
                1,
            )
        },
        Rule {
            check: Check::Ssn,
            ..rule("ssn", Phi, r"(?-u)\b([0-9]{3}-[0-9]{2}-[0-9]{4})\b", 1)
        },
        rule(
            "medical-record-number",
            Phi,
            &format!(
                r"(?-u)(?i)\b(?:mrn|medical[ _-]?record(?:[ _-]?(?:number|no|num|id))?){SEP}([A-Za-z0-9-]{{4,24}})"
            ),
            1,
        ),
        rule(
            "phone-number",
            Phi,
            &format!(
                r"(?-u)(?i)\b(?:phone|telephone|tel|fax|mobile|cell){SEP}(\+?1?[ .-]?\(?[0-9]{{3}}\)?[ .-]?[0-9]{{3}}[ .-]?[0-9]{{4}})\b"
            ),
            1,
        ),
        rule(
            "phone-number",
            Phi,
            r"(?-u)(\([0-9]{3}\) ?[0-9]{3}-[0-9]{4})\b",
            1,
        ),
        rule(
            "birth-date",
            Phi,
            &format!(
                r"(?-u)(?i)\b(?:dob|date[ _-]?of[ _-]?birth|birth[ _-]?date|birthdate|born){SEP}([0-9]{{1,4}}[-/.][0-9]{{1,2}}[-/.][0-9]{{1,4}})"
            ),
            1,
        ),
        rule(
            "health-plan-number",
            Phi,
            &format!(
                r"(?-u)(?i)\b(?:member|subscriber|health[ _-]?plan|insurance|beneficiary)[ _-]?(?:id|number|no|num){SEP}([A-Za-z0-9-]{{5,24}})"
            ),
            1,
        ),
        rule(
            "account-number",
            Phi,
            &format!(
                r"(?-u)(?i)\b(?:account|acct)[ _-]?(?:number|no|num|#){SEP}([0-9][0-9-]{{5,24}})"
            ),
            1,
        ),
        rule(
            "patient-url",
            Phi,
            r"(?-u)(?i)(https?://[^\s\x22'<>]*[?&/](?:patient|patientid|patient_id|mrn)[=/][A-Za-z0-9-]+)",
            1,
        ),
        Rule {
            marks_context: true,
            ..rule(
                "fhir-patient",
                Phi,
                r#"(?-u)"resourceType"[ \t]*:[ \t]*"Patient""#,
                0,
            )
        },
        Rule {
            marks_context: true,
            ..rule("hl7-pid-segment", Phi, r"(?-u)(?:^|\r)(PID\|[^\r\n]*)", 1)
        },
        Rule {
            contextual: true,
            ..rule(
                "email-address",
                Phi,
                r"(?-u)\b([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})\b",
                1,
            )
        },
        Rule {
            contextual: true,
            ..rule(
                "ip-address",
                Phi,
                r"(?-u)\b((?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3})\b",
                1,
            )
        },
        Rule {
            contextual: true,
            ..rule(
                "device-identifier",
                Phi,
                &format!(
                    r"(?-u)(?i)\b(?:device|udi|serial)[ _-]?(?:id|number|no|num){SEP}([A-Za-z0-9-]{{6,40}})"
                ),
                1,
            )
        },
    ];
    v.shrink_to_fit();
    v
}

/// A medical record number pattern from the configuration (its whole match is the
/// value).
pub fn mrn(pattern: &str) -> Rule {
    rule(
        "medical-record-number",
        Kind::Phi,
        &format!("(?-u){pattern}"),
        0,
    )
}

/// Whether `value` passes the rule's extra check.
pub fn passes(check: Check, value: &[u8]) -> bool {
    match check {
        Check::None => true,
        Check::Ssn => {
            let digits: Vec<u8> = value.iter().copied().filter(u8::is_ascii_digit).collect();
            let [a0, a1, a2, g0, g1, s0, s1, s2, s3] = digits.as_slice() else {
                return false;
            };
            let area = [*a0, *a1, *a2];
            area != *b"000"
                && area != *b"666"
                && *a0 != b'9'
                && [*g0, *g1] != *b"00"
                && [*s0, *s1, *s2, *s3] != *b"0000"
        }
        Check::Entropy(min) => entropy(value) >= min,
    }
}

/// Shannon entropy in bits per byte.
pub fn entropy(value: &[u8]) -> f64 {
    if value.is_empty() {
        return 0.0;
    }
    let mut counts = [0usize; 256];
    for b in value {
        if let Some(c) = counts.get_mut(usize::from(*b)) {
            *c += 1;
        }
    }
    let n = value.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}
