"""Interop with Python securesystemslib, the reference DSSE verifier of in-toto.

Usage:
  sslib.py verify ENVELOPE PUBLIC_PEM [KEYID|--default-keyid]
      Verify ENVELOPE with Envelope.verify, key type ecdsa, scheme
      ecdsa-sha2-nistp256. With KEYID the key is built with that keyid (use "" for
      Custody's default empty keyid); with --default-keyid securesystemslib computes
      its own (SSlibKey.from_crypto). Exit 0 when verified, 1 when not.
  sign PRIVATE_PEM STATEMENT_JSON OUT
      Sign STATEMENT_JSON's bytes as an in-toto DSSE envelope with CryptoSigner.
  keyids PUBLIC_PEM
      Print the keyid of PUBLIC_PEM under each convention, computed independently of
      Custody: sslib (securesystemslib), ssh (OpenSSH SHA256 fingerprint, what
      go-securesystemslib uses), hint (base64 sha256 of DER SPKI), witness (sha256 of PEM).
"""

import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives import serialization
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey


def load_public(path):
    with open(path, "rb") as f:
        return serialization.load_pem_public_key(f.read())


def verify(envelope_path, pem_path, keyid):
    with open(envelope_path, "rb") as f:
        envelope = Envelope.from_dict(json.load(f))
    if envelope.payload_type != "application/vnd.in-toto+json":
        print(f"unexpected payloadType {envelope.payload_type}")
        return 1
    public = load_public(pem_path)
    if keyid == "--default-keyid":
        key = SSlibKey.from_crypto(public, scheme="ecdsa-sha2-nistp256")
    else:
        pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        key = SSlibKey(keyid, "ecdsa", "ecdsa-sha2-nistp256", {"public": pem})
    try:
        accepted = envelope.verify([key], 1)
    except Exception as e:  # VerificationError and friends
        print(f"rejected: {type(e).__name__}: {e}")
        return 1
    print(f"verified by {list(accepted)}")
    return 0


def sign(private_path, statement_path, out_path):
    with open(private_path, "rb") as f:
        private = serialization.load_pem_private_key(f.read(), password=None)
    with open(statement_path, "rb") as f:
        payload = f.read()
    signer = CryptoSigner(private)
    envelope = Envelope(payload, "application/vnd.in-toto+json", {})
    envelope.sign(signer)
    with open(out_path, "w") as f:
        json.dump(envelope.to_dict(), f)
    print(signer.public_key.keyid)
    return 0


def keyids(pem_path):
    public = load_public(pem_path)
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    openssh = public.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).split()[1]
    ssh = "SHA256:" + base64.b64encode(
        hashlib.sha256(base64.b64decode(openssh)).digest()
    ).decode().rstrip("=")
    out = {
        "empty": "",
        "sslib": SSlibKey.from_crypto(public, scheme="ecdsa-sha2-nistp256").keyid,
        "witness": hashlib.sha256(pem).hexdigest(),
        "ssh": ssh,
        "hint": base64.b64encode(hashlib.sha256(der).digest()).decode(),
    }
    print(json.dumps(out, sort_keys=True))
    return 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "verify":
        return verify(argv[2], argv[3], argv[4] if len(argv) > 4 else "")
    if len(argv) == 5 and argv[1] == "sign":
        return sign(argv[2], argv[3], argv[4])
    if len(argv) == 3 and argv[1] == "keyids":
        return keyids(argv[2])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
