//! Policy data files (YAML or JSON), merged over the built-in data and evaluated by
//! every built-in rule against a fixed input: a data file of any shape is an error or a
//! decision, never a crash.
#![no_main]

use std::sync::OnceLock;

use custody_policy::engine::{Module, PolicySet, merge, parse_data};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn builtin() -> &'static (Vec<Module>, Value, Value) {
    static SET: OnceLock<(Vec<Module>, Value, Value)> = OnceLock::new();
    SET.get_or_init(|| {
        let set = PolicySet::builtin().unwrap_or_else(|e| panic!("built-ins: {e}"));
        let input: Value = serde_json::from_str(include_str!("../seeds/policy-input.json"))
            .unwrap_or_else(|e| panic!("seed input: {e}"));
        (set.modules().to_vec(), set.data().clone(), input)
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = custody_fuzz::MAX_ALLOCATION;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(over) = parse_data(text, std::path::Path::new("fuzz.yaml")) else {
        return;
    };
    let (modules, base, input) = builtin();
    let mut data = base.clone();
    if let Some(config) = data.pointer_mut("/custody/config") {
        merge(config, over);
    }
    if let Ok(set) = PolicySet::from_parts(modules.clone(), data) {
        let _ = set.evaluate_value(input.clone());
    }
});
