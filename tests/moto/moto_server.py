"""moto's server for Custody's tests (S3 and KMS): moto as pinned in
tests/requirements.txt, with two changes.

KMS: moto 5.2.5 ignores `MessageType` in Sign and always hashes the message it is
given, so a `DIGEST` request (a SHA-256 sent instead of a message longer than KMS's
4,096-byte limit for `RAW`) got a signature over the digest's digest. Here an ECDSA
key signs a `DIGEST` message as prehashed, as AWS documents; `RAW` is unchanged. And
moto signs with a disabled key, and hands out its public key; AWS answers
`DisabledException` (a key pending deletion: `KMSInvalidStateException`), and so does
this server.

S3: the change below alters no answer, only what a listing costs.

moto 5.2.5's ListObjectVersions deep-copies every version of every key in the bucket on
each call, before it filters by prefix, and a deep copy of an object reads its whole
body (FakeKey.__getstate__). The transparency log's race test (sixteen writer processes,
1,000 records, issue 14) lists the versions of one key on every conditional read-back,
so time and memory grew with the bucket: a run was stopped at seven minutes and 10.8 GB.
Real S3 lists by prefix.

Here a listing's first page copies only the keys under its prefix (the others it would
skip anyway), and the copies a listing makes are shallow. The listing only reads an object's
metadata (the ETag is taken first, on the stored object, under its lock) and sets
`is_latest` on its copy, so the copy carries no body. Everything
else is moto's own code: `python moto_server.py -H 127.0.0.1 -p PORT` takes
`moto_server`'s arguments.
"""

import copy
import io
import sys
import threading
import types

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from moto.core.exceptions import JsonRESTError
from moto.kms import models as kms_models
from moto.kms import responses as kms_responses
from moto.kms import utils as kms_utils
from moto.kms.exceptions import ValidationException
from moto.s3 import models
from moto.server import main

_kms = threading.local()
_kms_sign = kms_responses.KmsResponse.sign


def _sign_response(self):
    _kms.digest = self._get_param("MessageType") == "DIGEST"
    try:
        return _kms_sign(self)
    finally:
        _kms.digest = False


_ecdsa_sign = kms_utils.ECDSAPrivateKey.sign


def _ecdsa_sign_digest(self, message, signing_algorithm):
    if not getattr(_kms, "digest", False):
        return _ecdsa_sign(self, message, signing_algorithm)
    kms_utils.validate_signing_algorithm(signing_algorithm, self.valid_signing_algorithms)
    algorithm = self._ECDSAPrivateKey__hash_algorithm(signing_algorithm)
    if len(message) != algorithm.digest_size:
        raise ValidationException(
            f"Digest is invalid length for algorithm {signing_algorithm}."
        )
    return self.private_key.sign(message, ec.ECDSA(Prehashed(algorithm)))


kms_responses.KmsResponse.sign = _sign_response


def _enabled_only(method):
    def checked(self, key_id, *args, **kwargs):
        key = self.describe_key(key_id)
        if key.key_state == "Disabled":
            raise JsonRESTError("DisabledException", f"{key.arn} is disabled.")
        if key.key_state != "Enabled":
            raise JsonRESTError(
                "KMSInvalidStateException", f"{key.arn} is {key.key_state}."
            )
        return method(self, key_id, *args, **kwargs)

    return checked


kms_models.KmsBackend.sign = _enabled_only(kms_models.KmsBackend.sign)
kms_models.KmsBackend.get_public_key = _enabled_only(kms_models.KmsBackend.get_public_key)
kms_utils.ECDSAPrivateKey.sign = _ecdsa_sign_digest


def _listed(version):
    """A listing's shallow copy of a version. A FakeKey's copy gets an empty buffer of
    its own: FakeKey.__del__ closes its buffer, which would otherwise be the stored
    object's, and the listing never reads a body."""
    if type(version) is models.FakeKey:
        with version.lock:
            version.etag  # noqa: B018 - computed once, on the stored object, under its lock
    listed = object.__new__(type(version))
    listed.__dict__.update(version.__dict__)
    if type(version) is models.FakeKey:
        listed._value_buffer = io.BytesIO()
        listed.multipart = None
    return listed


_listing = threading.local()


def _deepcopy(value, memo=None):
    # the one deepcopy in moto.s3.models: a key's list of versions, in list_object_versions
    if type(value) is list and all(
        isinstance(v, (models.FakeKey, models.FakeDeleteMarker)) for v in value
    ):
        prefix = getattr(_listing, "prefix", None)
        if prefix and value and not value[0].name.startswith(prefix):
            # a key the listing would skip anyway (below, it is filtered by prefix)
            return []
        return [_listed(v) for v in value]
    return copy.deepcopy(value, memo)


_list_object_versions = models.S3Backend.list_object_versions


def _list_versions(self, bucket_name, delimiter=None, key_marker=None, *args, **kwargs):
    # Keys outside the prefix are left out before the copy only on a first page: with a
    # key marker, moto's paging compares every key's name with it, so all are kept.
    _listing.prefix = kwargs.get("prefix", args[1] if len(args) > 1 else "") if key_marker is None else None
    try:
        return _list_object_versions(self, bucket_name, delimiter, key_marker, *args, **kwargs)
    finally:
        _listing.prefix = None


models.S3Backend.list_object_versions = _list_versions


models.copy = types.SimpleNamespace(copy=copy.copy, deepcopy=_deepcopy)

if __name__ == "__main__":
    sys.exit(main())
