"""Evaluates Custody's Rego policies with regopy (rego-cpp), an engine independent of
regorus, and prints the decision as JSON: {"decision": ..., "rules": {id: {...}}}.

Usage: regopy_check.py POLICY_DIR DATA.json INPUT.json [--schema-input S.json]
       [--schema-decision S.json --decision D.json]

Every .rego file directly in POLICY_DIR is loaded (the built-in library; tests/ is
not). With schemas, the input (and a decision document) are validated first.
"""

import json
import pathlib
import sys

from regopy import Interpreter


def main(argv):
    policy_dir, data_path, input_path = argv[1:4]
    opts = dict(zip(argv[4::2], argv[5::2]))
    text = pathlib.Path(input_path).read_text()
    if "--schema-input" in opts:
        import jsonschema

        schema = json.loads(pathlib.Path(opts["--schema-input"]).read_text())
        jsonschema.validate(json.loads(text), schema)
    if "--schema-decision" in opts:
        import jsonschema

        schema = json.loads(pathlib.Path(opts["--schema-decision"]).read_text())
        jsonschema.validate(json.loads(pathlib.Path(opts["--decision"]).read_text()), schema)
    rego = Interpreter()
    for path in sorted(pathlib.Path(policy_dir).glob("*.rego")):
        rego.add_module(str(path), path.read_text())
    rego.add_data_json(pathlib.Path(data_path).read_text())
    rego.set_input_term(text)
    out = rego.query("x := data.custody.decision.result")
    # The output's "bindings" carries the value; expressions are [true].
    doc = json.loads(str(out))
    print(json.dumps(doc["bindings"]["x"], sort_keys=True))


if __name__ == "__main__":
    main(sys.argv)
