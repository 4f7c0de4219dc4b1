// Verifies a Sigstore bundle with Sigstore's reference JavaScript verifier
// (@sigstore/verify), by public key, as Custody's test suite runs it.
//
// Usage: node sigstore-verify.js BUNDLE PUBLIC_PEM TRUSTED_ROOT_JSON HINT
// The key is found by the bundle's public-key hint, which must equal HINT. No
// transparency-log entry or timestamp is required (Custody's bundles carry none unless
// a TSA is configured). Exit 0 verified; 1 not, with the verifier's reason.
"use strict";
const fs = require("fs");
const crypto = require("crypto");
const { Verifier, toSignedEntity, toTrustMaterial } = require("@sigstore/verify");
const { bundleFromJSON } = require("@sigstore/bundle");
const { TrustedRoot } = require("@sigstore/protobuf-specs");

const [bundlePath, pemPath, rootPath, hint] = process.argv.slice(2);
try {
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, "utf8")));
  const root = TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(rootPath, "utf8")));
  const publicKey = crypto.createPublicKey(fs.readFileSync(pemPath, "utf8"));
  const keys = (h) => {
    if (h !== hint) throw new Error(`no key for hint ${h}`);
    return { publicKey, validFor: () => true };
  };
  const verifier = new Verifier(toTrustMaterial(root, keys), {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  verifier.verify(toSignedEntity(bundle));
  console.log("verified");
} catch (e) {
  console.log(`not verified: ${e.message}`);
  process.exit(1);
}
