#!/bin/sh
# The image build and its SBOM (syft registry:$CUSTODY_SUBJECT -o cyclonedx-json): the
# SBOM's metadata.component names the image by its manifest digest.
set -eu
python3 - "$CUSTODY_SUBJECT" <<'PY'
import json, sys
name, digest = sys.argv[1].rsplit("@", 1)
with open("fixtures/bom.cdx.json") as f:
    bom = json.load(f)
component = bom.setdefault("metadata", {}).setdefault("component", {})
component["purl"] = f"pkg:oci/{name.rsplit('/', 1)[-1]}@{digest}?repository_url={name}"
with open("bom.cdx.json", "w") as f:
    json.dump(bom, f, indent=2)
PY
echo "built $CUSTODY_SUBJECT; SBOM bom.cdx.json"
