//! JSON Schemas of the wire formats: the policy input and the decision document.
//! Derived from the types, printed by `policy-check --print-schema`, snapshot tested.

use crate::decision::Decision;
use crate::input::PolicyInput;

/// The JSON Schema of the policy input, pretty-printed.
pub fn input_schema() -> String {
    pretty(schemars::schema_for!(PolicyInput))
}

/// The JSON Schema of the decision document, pretty-printed.
pub fn decision_schema() -> String {
    pretty(schemars::schema_for!(Decision))
}

fn pretty(schema: schemars::Schema) -> String {
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}
