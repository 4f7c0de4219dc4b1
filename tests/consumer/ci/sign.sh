#!/bin/sh
# cosign sign --key env://COSIGN_KEY --output-signature artifact.sig "$CUSTODY_SUBJECT",
# spelled out: the simple-signing payload naming the manifest digest, signed with the
# P-256 key (ECDSA, SHA-256, DER, base64), pushed as the legacy sha256-<hex>.sig tag.
# COSIGN_KEY is the PEM itself (a GitHub secret) or its path (a GitLab File variable).
set -eu
: "${REGISTRY_URL:?the registry to push the signature to}"
name="${CUSTODY_SUBJECT%@*}"
digest="${CUSTODY_SUBJECT##*@}"
repo="${name#*/}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -f "$COSIGN_KEY" ]; then
  key="$COSIGN_KEY"
else
  key="$work/cosign.key"
  (umask 077 && printf '%s\n' "$COSIGN_KEY" > "$key")
fi
printf '{"critical":{"identity":{"docker-reference":"%s"},"image":{"docker-manifest-digest":"%s"},"type":"cosign container image signature"},"optional":null}' \
  "$name" "$digest" > "$work/payload.json"
openssl dgst -sha256 -sign "$key" "$work/payload.json" | base64 | tr -d '\n' > artifact.sig

push_blob() {
  blob_digest="sha256:$(sha256sum "$1" | cut -d' ' -f1)"
  location=$(curl -fsS -o /dev/null -D - -X POST "$REGISTRY_URL/v2/$repo/blobs/uploads/" |
    tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case "$location" in http*) ;; *) location="$REGISTRY_URL$location" ;; esac
  case "$location" in *\?*) sep='&' ;; *) sep='?' ;; esac
  curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$1" \
    "$location${sep}digest=$blob_digest" >/dev/null
  printf '%s' "$blob_digest"
}
printf '{}' > "$work/config.json"
payload_digest=$(push_blob "$work/payload.json")
config_digest=$(push_blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"%s","size":%s,"annotations":{"dev.cosignproject.cosign/signature":"%s"}}]}' \
  "$config_digest" "$payload_digest" "$(wc -c < "$work/payload.json" | tr -d ' ')" "$(cat artifact.sig)" > "$work/manifest.json"
curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary "@$work/manifest.json" "$REGISTRY_URL/v2/$repo/manifests/sha256-${digest#sha256:}.sig" >/dev/null
echo "signed $CUSTODY_SUBJECT; artifact.sig written"
