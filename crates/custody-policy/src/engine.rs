//! The policy set: the built-in Rego library (embedded), user policies that add or
//! replace rules, the data document with thresholds, and evaluation with regorus.
//!
//! The decision rule is compiled once to regorus's bytecode VM (RVM), which evaluates
//! large inputs about twice as fast as its tree-walking interpreter (BENCHMARKS.md).
//! A policy set the compiler does not accept (a user policy using a construct the VM
//! lacks) is evaluated by the interpreter instead; both are regorus, and the test
//! suite checks that they agree on every case of the decision table.
//!
//! Rule packages live under `data.custody.rules`; `data.custody.decision.result`
//! gathers them (see `policies/decision.rego`). A user file whose name equals a
//! built-in file's replaces it; any other file adds rules (or tests).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use custody_evidence::Digest;
use serde::Deserialize;
use serde_json::Value;

use crate::decision::{RuleResult, Status, Verdict};
use crate::error::PolicyError;
use crate::input::PolicyInput;

/// One Rego module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// The file name (`scan-fresh.rego`); user files replace built-ins of the same name.
    pub name: String,
    /// Where it came from: `builtin` or the user file's path.
    pub origin: String,
    pub text: String,
}

macro_rules! builtin {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_str!(concat!("../policies/", $file)))),*]
    };
}

/// The built-in policy library, embedded in every binary.
pub const BUILTIN_POLICIES: &[(&str, &str)] = builtin![
    "decision.rego",
    "lib.rego",
    "environment-configured.rego",
    "evidence-integrity.rego",
    "evidence-logged.rego",
    "image-signed.rego",
    "cosign-signature.rego",
    "sbom-authentic.rego",
    "sbom-aligned.rego",
    "sbom-licenses.rego",
    "scan-subject.rego",
    "scan-fresh.rego",
    "scan-severity.rego",
    "scan-secrets.rego",
    "scan-misconfig.rego",
    "cve-exceptions.rego",
    "tests-passed.rego",
    "coverage.rego",
    "runner-tier.rego",
    "environment-match.rego",
    "environment-protected.rego",
    "approvers-authorized.rego",
    "approvals-count.rego",
    "separation-of-duties.rego",
    "github-attestation.rego",
];

/// The built-in policies' own Rego tests (`custody policy test` runs them).
pub const BUILTIN_TESTS: &[(&str, &str)] = builtin![
    "tests/fixtures_test.rego",
    "tests/decision_test.rego",
    "tests/signature_test.rego",
    "tests/sbom_test.rego",
    "tests/scan_test.rego",
    "tests/quality_test.rego",
    "tests/environment_test.rego",
    "tests/approvals_test.rego",
    "tests/log_test.rego",
    "tests/secrets_test.rego",
    "tests/attestation_test.rego",
];

/// The built-in thresholds (`data.custody.config`).
pub const BUILTIN_DATA: &str = include_str!("../policies/defaults.yaml");

/// The rule every decision is read from.
pub const DECISION_RULE: &str = "data.custody.decision.result";

/// Policies and data, parsed once, evaluated many times.
#[derive(Debug, Clone)]
pub struct PolicySet {
    modules: Vec<Module>,
    data: Value,
    engine: regorus::Engine,
    /// The decision rule compiled for the VM; `None` when the compiler refused the set.
    program: Option<Arc<regorus::rvm::Program>>,
    /// `data` as an engine value, converted once.
    data_value: regorus::Value,
    digest: Digest,
}

/// Which regorus evaluator decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluator {
    /// The bytecode VM (the default).
    Vm,
    /// The tree-walking interpreter.
    Interpreter,
}

/// The outcome of evaluating the policies on one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub decision: Verdict,
    /// Ordered by rule id.
    pub rules: Vec<RuleResult>,
}

#[derive(Deserialize)]
struct RawResult {
    decision: Verdict,
    rules: std::collections::BTreeMap<String, RawRule>,
}

#[derive(Deserialize)]
struct RawRule {
    id: String,
    status: Status,
    message: String,
    control: String,
    #[serde(default)]
    title: Option<String>,
}

impl PolicySet {
    /// The built-in policies with the built-in data.
    pub fn builtin() -> Result<Self, PolicyError> {
        Self::load(&[], &[], false)
    }

    /// Built-ins, then every `.rego` file under each of `dirs` (sorted, recursively),
    /// then `data_files` merged over the built-in data, in order. With `tests`, the
    /// built-in Rego tests are loaded too.
    pub fn load(
        dirs: &[PathBuf],
        data_files: &[PathBuf],
        tests: bool,
    ) -> Result<Self, PolicyError> {
        let mut modules: Vec<Module> = BUILTIN_POLICIES
            .iter()
            .chain(if tests { BUILTIN_TESTS } else { &[] })
            .map(|(name, text)| Module {
                name: (*name).to_owned(),
                origin: "builtin".into(),
                text: (*text).to_owned(),
            })
            .collect();
        for dir in dirs {
            for path in rego_files(dir)? {
                let text = std::fs::read_to_string(&path).map_err(|e| PolicyError::Read {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let module = Module {
                    name,
                    origin: path.display().to_string(),
                    text,
                };
                match modules
                    .iter_mut()
                    .find(|m| m.origin == "builtin" && m.name == module.name)
                {
                    Some(slot) => *slot = module,
                    None => modules.push(module),
                }
            }
        }
        let mut config = parse_data(BUILTIN_DATA, Path::new("builtin defaults.yaml"))?;
        for file in data_files {
            let text = std::fs::read_to_string(file).map_err(|e| PolicyError::Read {
                path: file.clone(),
                message: e.to_string(),
            })?;
            let over = parse_data(&text, file)?;
            merge(&mut config, over);
        }
        let data = serde_json::json!({ "custody": { "config": config } });
        Self::from_parts(modules, data)
    }

    /// A policy set from modules and a whole data document.
    pub fn from_parts(modules: Vec<Module>, data: Value) -> Result<Self, PolicyError> {
        let mut engine = regorus::Engine::new();
        // Our policies rely on builtin errors being errors (regorus' default, unlike
        // OPA): a policy that calls a builtin wrongly is a broken policy, exit 2.
        engine.set_strict_builtin_errors(true);
        for m in &modules {
            engine
                .add_policy(m.origin_name(), m.text.clone())
                .map_err(|e| PolicyError::Policy {
                    file: m.origin_name(),
                    message: e.to_string(),
                })?;
        }
        let data_value = regorus::Value::from(data.clone());
        engine
            .add_data(data_value.clone())
            .map_err(|e| PolicyError::Data(e.to_string()))?;
        // Analysis, scheduling and rule gathering run on the first evaluation and are
        // kept by the engine; doing it once here means every clone starts prepared
        // instead of repeating it per evaluation. The result on an empty input is
        // irrelevant (and may be an error); real errors surface in `evaluate`.
        engine.set_input(regorus::Value::new_object());
        let _ = engine.eval_rule(DECISION_RULE.to_owned());
        let program = compile(&engine);
        let digest = digest_of(&modules, &data);
        Ok(Self {
            modules,
            data,
            engine,
            program,
            data_value,
            digest,
        })
    }

    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// The whole data document (`{"custody": {"config": ...}}`).
    pub fn data(&self) -> &Value {
        &self.data
    }

    /// SHA-256 over every module (name, origin, text) and the data, in load order.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Evaluates the policies on `input`.
    pub fn evaluate(&self, input: &PolicyInput) -> Result<Evaluation, PolicyError> {
        let value = serde_json::to_value(input).map_err(|e| PolicyError::Input(e.to_string()))?;
        self.evaluate_value(value)
    }

    /// Evaluates the policies on an input document given as JSON.
    pub fn evaluate_value(&self, input: Value) -> Result<Evaluation, PolicyError> {
        self.evaluate_with(self.evaluator(), input)
    }

    /// The evaluator [`PolicySet::evaluate`] uses for this set.
    pub fn evaluator(&self) -> Evaluator {
        if self.program.is_some() {
            Evaluator::Vm
        } else {
            Evaluator::Interpreter
        }
    }

    /// Evaluates with a chosen evaluator (the VM falls back to the interpreter when the
    /// set did not compile for it).
    pub fn evaluate_with(
        &self,
        evaluator: Evaluator,
        input: Value,
    ) -> Result<Evaluation, PolicyError> {
        let input = regorus::Value::from(input);
        let out = match (&self.program, evaluator) {
            (Some(program), Evaluator::Vm) => {
                let mut vm = regorus::rvm::RegoVM::new();
                vm.load_program(program.clone());
                // Rego has no recursion or unbounded loops: evaluation ends, and a
                // step's time limit bounds it. The VM's default limit (25,000
                // instructions) is far below what a 10,000-finding scan needs.
                vm.set_max_instructions(usize::MAX);
                vm.set_strict_builtin_errors(true);
                vm.set_data(self.data_value.clone())
                    .map_err(|e| PolicyError::Data(e.to_string()))?;
                vm.set_input(input);
                vm.execute().map_err(|e| PolicyError::Eval(e.to_string()))?
            }
            _ => {
                let mut engine = self.engine.clone();
                engine.set_input(input);
                engine
                    .eval_rule(DECISION_RULE.to_owned())
                    .map_err(|e| PolicyError::Eval(e.to_string()))?
            }
        };
        if out == regorus::Value::Undefined {
            return Err(PolicyError::Eval(format!(
                "{DECISION_RULE} is undefined: a replaced decision.rego must define it"
            )));
        }
        let json = serde_json::to_value(&out).map_err(|e| PolicyError::Eval(e.to_string()))?;
        let raw: RawResult = serde_json::from_value(json).map_err(|e| {
            PolicyError::Eval(format!(
                "{DECISION_RULE} is not a decision ({e}); each rule package needs meta.id, meta.control and meta.gates"
            ))
        })?;
        let rules = raw
            .rules
            .into_values()
            .map(|r| RuleResult {
                id: r.id,
                status: r.status,
                message: r.message,
                control: r.control,
                title: r.title,
            })
            .collect();
        Ok(Evaluation {
            decision: raw.decision,
            rules,
        })
    }

    /// The engine with policies and data loaded, for tests and benchmarks.
    pub fn engine(&self) -> &regorus::Engine {
        &self.engine
    }
}

impl Module {
    /// The name given to the engine: the built-in path or the user's file.
    pub fn origin_name(&self) -> String {
        if self.origin == "builtin" {
            format!("builtin/{}", self.name)
        } else {
            self.origin.clone()
        }
    }
}

/// The decision rule compiled for the VM, or `None` when the compiler refuses the set
/// (the interpreter then decides; errors in the policies themselves surface there).
fn compile(engine: &regorus::Engine) -> Option<Arc<regorus::rvm::Program>> {
    let mut engine = engine.clone();
    let entry: Arc<str> = DECISION_RULE.into();
    let policy = engine.compile_with_entrypoint(&entry).ok()?;
    regorus::languages::rego::compiler::Compiler::compile_from_policy(&policy, &[DECISION_RULE])
        .ok()
}

fn digest_of(modules: &[Module], data: &Value) -> Digest {
    let mut h = custody_evidence::digest::Hasher::new();
    for m in modules {
        for part in [m.name.as_bytes(), m.origin.as_bytes(), m.text.as_bytes()] {
            h.update(&(part.len() as u64).to_be_bytes());
            h.update(part);
        }
    }
    let data = serde_json::to_vec(data).unwrap_or_default();
    h.update(&(data.len() as u64).to_be_bytes());
    h.update(&data);
    h.finish()
}

/// Every `.rego` file under `dir`, sorted, recursively.
fn rego_files(dir: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    let read = |p: &Path| {
        std::fs::read_dir(p).map_err(|e| PolicyError::Read {
            path: p.to_path_buf(),
            message: format!("{e}; --policy takes a directory of .rego files"),
        })
    };
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in read(&d)? {
            let path = entry
                .map_err(|e| PolicyError::Read {
                    path: d.clone(),
                    message: e.to_string(),
                })?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rego") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Parses a data file: YAML (JSON is YAML too); it must be a mapping.
pub fn parse_data(text: &str, path: &Path) -> Result<Value, PolicyError> {
    let value: Value = serde_yaml_ng::from_str(text).map_err(|e| PolicyError::Read {
        path: path.to_path_buf(),
        message: format!("not valid YAML or JSON: {e}"),
    })?;
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(serde_json::Map::new())),
        _ => Err(PolicyError::Read {
            path: path.to_path_buf(),
            message: "the data file must be a mapping (e.g. `scan: {max_high: 3}`)".into(),
        }),
    }
}

/// Merges `over` into `base`: objects merge key by key, anything else replaces.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_merges_objects_and_replaces_the_rest() {
        let mut base =
            serde_json::json!({"scan": {"max_high": 5, "max_critical": 0}, "exceptions": [1]});
        merge(
            &mut base,
            serde_json::json!({"scan": {"max_high": 2}, "exceptions": []}),
        );
        assert_eq!(
            base,
            serde_json::json!({"scan": {"max_high": 2, "max_critical": 0}, "exceptions": []})
        );
    }

    #[test]
    fn the_digest_changes_with_any_module_or_threshold() {
        let a = PolicySet::builtin().unwrap();
        let mut modules = a.modules().to_vec();
        let data = a.data().clone();
        if let Some(m) = modules.last_mut() {
            m.text.push('\n');
        }
        let b = PolicySet::from_parts(modules, data.clone()).unwrap();
        assert_ne!(a.digest(), b.digest());
        let mut data2 = data;
        merge(
            &mut data2,
            serde_json::json!({"custody": {"config": {"scan": {"max_high": 6}}}}),
        );
        let c = PolicySet::from_parts(a.modules().to_vec(), data2).unwrap();
        assert_ne!(a.digest(), c.digest());
        assert_eq!(a.digest(), PolicySet::builtin().unwrap().digest());
    }
}
