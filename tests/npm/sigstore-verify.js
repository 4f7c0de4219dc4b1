// Verifies a Sigstore bundle with Sigstore's reference JavaScript verifier
// (@sigstore/verify), by public key, as Custody's test suite runs it.
//
// Usage: node sigstore-verify.js BUNDLE PUBLIC_PEM TRUSTED_ROOT_JSON HINT [TSA_CHAIN_PEM]
// The key is found by the bundle's public-key hint, which must equal HINT. No
// transparency-log entry is required. With TSA_CHAIN_PEM (the TSA's certificate, then
// its CA), that TSA joins the trusted root's timestamp authorities and one verified
// RFC 3161 timestamp is required; without it none is. Exit 0 verified; 1 not, with the
// verifier's reason.
"use strict";
const fs = require("fs");
const crypto = require("crypto");
const { Verifier, toSignedEntity, toTrustMaterial } = require("@sigstore/verify");
const { bundleFromJSON } = require("@sigstore/bundle");
const { TrustedRoot } = require("@sigstore/protobuf-specs");

const [bundlePath, pemPath, rootPath, hint, tsaChainPath] = process.argv.slice(2);
try {
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, "utf8")));
  const rootJSON = JSON.parse(fs.readFileSync(rootPath, "utf8"));
  if (tsaChainPath) {
    const pems = fs.readFileSync(tsaChainPath, "utf8").match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g);
    rootJSON.timestampAuthorities = [{
      subject: { organization: "custody-test", commonName: "Custody Test TSA" },
      certChain: {
        certificates: pems.map((p) => ({ rawBytes: new crypto.X509Certificate(p).raw.toString("base64") })),
      },
      validFor: { start: "2000-01-01T00:00:00Z" },
    }];
  }
  const root = TrustedRoot.fromJSON(rootJSON);
  const publicKey = crypto.createPublicKey(fs.readFileSync(pemPath, "utf8"));
  const keys = (h) => {
    if (h !== hint) throw new Error(`no key for hint ${h}`);
    return { publicKey, validFor: () => true };
  };
  const verifier = new Verifier(toTrustMaterial(root, keys), {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: tsaChainPath ? 1 : 0,
  });
  verifier.verify(toSignedEntity(bundle));
  console.log("verified");
} catch (e) {
  console.log(`not verified: ${e.message}`);
  process.exit(1);
}
