//! A synthetic corpus of protected health information and secrets, generated here: no
//! real patient, no live credential. Each planted value is known, so a test can check
//! that every one is found and that none is ever printed or stored.
//!
//! Secrets are the documented example values where vendors publish one (AWS's
//! `AKIAIOSFODNN7EXAMPLE` / `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`; GitHub's docs
//! token `ghp_16C7e42F292c6912E7710c838347Ae178B4a`), a GitLab token of the documented
//! shape, and a P-256 private key minted per run.

use std::path::{Path, PathBuf};

/// A value planted in a file, and the rule that must find it.
#[derive(Debug, Clone)]
pub struct Planted {
    pub file: &'static str,
    pub rule: &'static str,
    pub value: String,
}

/// The corpus: files (name, bytes) and what is planted in them.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub files: Vec<(&'static str, Vec<u8>)>,
    pub planted: Vec<Planted>,
}

fn plant(v: &mut Vec<Planted>, file: &'static str, rule: &'static str, value: &str) {
    v.push(Planted {
        file,
        rule,
        value: value.to_owned(),
    });
}

impl Corpus {
    pub fn new() -> Self {
        let mut planted = Vec::new();
        let p = &mut planted;

        // a FHIR R4 Bundle with one Patient (the shape of the spec's patient-example)
        let fhir = serde_json::json!({
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{
                "fullUrl": "https://ehr.example.org/fhir/Patient/8833221",
                "resource": {
                    "resourceType": "Patient",
                    "id": "8833221",
                    "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "type": {"text": "MRN"}, "value": "00482913"}],
                    "name": [{"family": "Roe", "given": ["Jane"]}],
                    "telecom": [{"system": "phone", "value": "(555) 014-2233"}, {"system": "email", "value": "jane.roe@example.org"}],
                    "birthDate": "1984-03-12",
                    "address": [{"line": ["1 Main St"], "city": "Springfield", "postalCode": "12345"}]
                }
            }]
        });
        let fhir = serde_json::to_vec_pretty(&fhir).unwrap_or_default();
        plant(
            p,
            "fhir-bundle.json",
            "fhir-patient",
            r#""resourceType": "Patient""#,
        );
        plant(p, "fhir-bundle.json", "phone-number", "(555) 014-2233");
        plant(
            p,
            "fhir-bundle.json",
            "email-address",
            "jane.roe@example.org",
        );
        plant(p, "fhir-bundle.json", "birth-date", "1984-03-12");
        plant(
            p,
            "fhir-bundle.json",
            "patient-url",
            "https://ehr.example.org/fhir/Patient/8833221",
        );

        // an HL7 v2.5 ADT^A01 message (segments end in CR)
        let pid = "PID|1||00482913^^^SGH^MR||ROE^JANE^Q||19840312|F|||1 MAIN ST^^SPRINGFIELD^IL^12345||(555)014-2233|||S||ACCT4402118877|512-34-7788";
        let hl7 = [
            "MSH|^~\\&|ADT1|SGH|LABADT|SGH|202612081030||ADT^A01|MSG00001|P|2.5",
            "EVN|A01|202612081030",
            pid,
            "PV1|1|I|2000^2012^01||||004777^LEBAUER^SIDNEY^J.|||SUR||||ADM|A0|",
            "",
        ]
        .join("\r");
        plant(p, "adt-a01.hl7", "hl7-pid-segment", pid);
        plant(p, "adt-a01.hl7", "ssn", "512-34-7788");

        // a JUnit report whose test output quotes a patient
        let junit = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="2" failures="0">
  <testsuite name="intake" tests="2" failures="0" errors="0" skipped="0">
    <testcase classname="intake" name="admits_patient" time="0.01">
      <system-out>loaded patient SSN 301-22-4455, MRN: 77120045, Phone: 555-019-8877, DOB: 03/12/1984
Member ID: HPX-99231877 Account Number: 4402-118877 patient device at 10.20.30.40, Device ID: PM-88812345
</system-out>
    </testcase>
    <testcase classname="intake" name="discharges" time="0.01"/>
  </testsuite>
</testsuites>
"#
        .as_bytes()
        .to_vec();
        plant(p, "junit.xml", "ssn", "301-22-4455");
        plant(p, "junit.xml", "medical-record-number", "77120045");
        plant(p, "junit.xml", "phone-number", "555-019-8877");
        plant(p, "junit.xml", "birth-date", "03/12/1984");
        plant(p, "junit.xml", "health-plan-number", "HPX-99231877");
        plant(p, "junit.xml", "account-number", "4402-118877");
        plant(p, "junit.xml", "ip-address", "10.20.30.40");
        plant(p, "junit.xml", "device-identifier", "PM-88812345");

        // a CycloneDX SBOM whose fields carry an SSN and an MRN of the configured format
        let bom = serde_json::json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "version": 1,
            "components": [{
                "type": "library",
                "name": "intake-fixtures",
                "version": "1.0.0",
                "description": "sample record for 219-09-9999 (MRN-55512345)",
                "properties": [{"name": "contact", "value": "tel: (555) 017-4411"}]
            }]
        });
        let bom = serde_json::to_vec(&bom).unwrap_or_default();
        plant(p, "bom.cdx.json", "ssn", "219-09-9999");
        plant(p, "bom.cdx.json", "medical-record-number", "MRN-55512345");
        plant(p, "bom.cdx.json", "phone-number", "(555) 017-4411");

        // secrets
        let key = p256::SecretKey::random(&mut rand_core::OsRng);
        let pem = p256::pkcs8::EncodePrivateKey::to_pkcs8_pem(&key, Default::default())
            .map(|z| z.to_string())
            .unwrap_or_default();
        let env = format!(
            "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nGITHUB_TOKEN=ghp_16C7e42F292c6912E7710c838347Ae178B4a\nGITLAB_TOKEN=glpat-xY3zQ9vLm2Kp7RtW5sBd\n{pem}"
        );
        plant(
            p,
            "secrets.env",
            "aws-access-key-id",
            "AKIAIOSFODNN7EXAMPLE",
        );
        plant(
            p,
            "secrets.env",
            "aws-secret-access-key",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        plant(
            p,
            "secrets.env",
            "github-pat",
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        );
        plant(p, "secrets.env", "gitlab-pat", "glpat-xY3zQ9vLm2Kp7RtW5sBd");
        plant(
            p,
            "secrets.env",
            "private-key",
            "-----BEGIN PRIVATE KEY-----",
        );

        // a gitleaks report (its JSON shape): scanner reports quote what they found
        let gitleaks = serde_json::json!([{
            "Description": "AWS Access Key", "StartLine": 3, "EndLine": 3, "StartColumn": 19,
            "EndColumn": 38, "Match": "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
            "Secret": "AKIAIOSFODNN7EXAMPLE", "File": "deploy/.env", "Commit": "",
            "Entropy": 3.68, "RuleID": "aws-access-token", "Fingerprint": "deploy/.env:aws-access-token:3"
        }]);
        let gitleaks = serde_json::to_vec_pretty(&gitleaks).unwrap_or_default();
        plant(
            p,
            "gitleaks.json",
            "aws-access-key-id",
            "AKIAIOSFODNN7EXAMPLE",
        );

        Self {
            files: vec![
                ("fhir-bundle.json", fhir),
                ("adt-a01.hl7", hl7.into_bytes()),
                ("junit.xml", junit),
                ("bom.cdx.json", bom),
                ("secrets.env", env.into_bytes()),
                ("gitleaks.json", gitleaks),
            ],
            planted,
        }
    }

    /// Writes the files into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> Vec<PathBuf> {
        self.files
            .iter()
            .map(|(name, bytes)| {
                let p = dir.join(name);
                let _ = std::fs::write(&p, bytes);
                p
            })
            .collect()
    }

    /// The configuration pattern the corpus's MRN-format numbers follow.
    pub const MRN_PATTERN: &'static str = r"\bMRN-[0-9]{8}\b";

    /// Every planted value, to grep outputs for.
    pub fn values(&self) -> Vec<&str> {
        self.planted.iter().map(|p| p.value.as_str()).collect()
    }
}

impl Default for Corpus {
    fn default() -> Self {
        Self::new()
    }
}
