"""The authenticated key exchange of docs/protocol.md (version 1) on pyca/cryptography's Ed25519.

Written from the specification alone, independently of our TypeScript, so that the two can be
tested against each other: identity fingerprints, the transcript, the step 2b payload, a strict
verifier, and the bound token keys used after an authenticated exchange.

usage: auth.py keygen             a new PKCS#8 PEM Ed25519 private key on stdout, its
                                  fingerprint on stderr
       auth.py fingerprint FILE   the fingerprint of a PKCS#8 PEM private key (or of a
                                  public key PEM)
       auth.py token-key Z_HEX DIRECTION NETID ACTION
                                  the bound token key (hex) for the shared secret Z
       auth.py token-key Z_HEX lab
                                  the lab protocol's Fernet key (hex), for comparison
"""
import base64
import binascii
import hashlib
import json
import re
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = 1
TRANSCRIPT_LABEL = b"secure_mqtt key exchange v1"
# SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits) of 32 bytes }: RFC 8410.
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
ED25519_SPKI_LENGTH = 44
SIGNATURE_LENGTH = 64
TOKEN_LABEL = b"secure_mqtt token v1"
DIRECTIONS = ("request", "response")

_FINGERPRINT = re.compile(r"sha256:([0-9a-f]{64})", re.IGNORECASE)
_PEM = re.compile(rb"-----BEGIN ([^\r\n-]*)-----\r?\n(.*?)-----END \1-----", re.DOTALL)


class AuthError(Exception):
    """A key, fingerprint or file that this module cannot use."""


class SignatureRejected(Exception):
    """A step 2b payload refused before any signature check; `kind` says how to count it."""

    kind = "malformed"


class MalformedSignature(SignatureRejected):
    """Not a step 2b object at all, or a version 1 object with a missing or bad member."""

    kind = "malformed"


class UnsupportedVersion(SignatureRejected):
    """A well-formed object whose `version` is not 1."""

    kind = "version"


def spki_der(key):
    """The DER SubjectPublicKeyInfo of an Ed25519 public or private key."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(key_or_der):
    """The fingerprint of an identity (SPKI DER bytes or a key): "SHA256:" + lowercase hex."""
    der = key_or_der if isinstance(key_or_der, (bytes, bytearray)) else spki_der(key_or_der)
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def parse_fingerprint(text):
    """The canonical form of a fingerprint given in any case; ValueError when it is not one."""
    m = _FINGERPRINT.fullmatch(text.strip())
    if m is None:
        raise ValueError("not a fingerprint (SHA256: and 64 hex digits): %r" % text[:80])
    return "SHA256:" + m.group(1).lower()


def generate_identity():
    """A fresh Ed25519 identity key."""
    return ed25519.Ed25519PrivateKey.generate()


def identity_pem(private_key):
    """The PKCS#8 PEM of an identity key, the form `openssl genpkey -algorithm ed25519` writes."""
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_identity_pem(data):
    """An Ed25519 private key from PKCS#8 PEM bytes; AuthError (without key material) if not."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise AuthError("not an unencrypted PKCS#8 PEM private key") from e
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise AuthError("not an Ed25519 key (%s)" % type(key).__name__.lstrip("_"))
    return key


def load_identity(path):
    """The Ed25519 identity in a PKCS#8 PEM file; AuthError naming the file if unusable."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise AuthError("cannot read %s: %s" % (path, e.strerror or e)) from e
    try:
        return load_identity_pem(data)
    except AuthError as e:
        raise AuthError("%s: %s" % (path, e)) from e


def pem_der(pem):
    """The DER inside a PEM text: the base64 between its first BEGIN line and the END line.

    These exact bytes are what the transcript carries, not a re-encoding of the parsed key.
    ValueError when there is no such block or its base64 is bad.
    """
    if isinstance(pem, str):
        pem = pem.encode("ascii")
    m = _PEM.search(pem)
    if m is None:
        raise ValueError("no PEM block")
    body = b"".join(m.group(2).split())
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as e:
        raise ValueError("bad base64 in the PEM block") from e


def transcript(netid, a_der, b_der):
    """The bytes the responder signs: label, 0x00, then netid, A and B, each length-prefixed."""
    n = netid.encode("utf-8") if isinstance(netid, str) else bytes(netid)
    if len(n) > 0xFFFF:
        raise ValueError("netid longer than 65535 bytes")
    if len(a_der) > 0xFFFFFFFF or len(b_der) > 0xFFFFFFFF:
        raise ValueError("public key longer than 2^32 - 1 bytes")
    return b"".join([
        TRANSCRIPT_LABEL,
        b"\x00",
        struct.pack(">H", len(n)),
        n,
        struct.pack(">I", len(a_der)),
        bytes(a_der),
        struct.pack(">I", len(b_der)),
        bytes(b_der),
    ])


def sign(private_key, netid, a_der, b_der):
    """The 64-byte Ed25519 signature over the transcript of (netid, A, B)."""
    return private_key.sign(transcript(netid, a_der, b_der))


def encode_payload(identity_der, signature, version=VERSION):
    """A step 2b payload from its members as given (tests pass wrong ones on purpose)."""
    return json.dumps(
        {
            "version": version,
            "identity": base64.b64encode(identity_der).decode("ascii"),
            "signature": base64.b64encode(signature).decode("ascii"),
        },
        separators=(",", ":"),
    ).encode("utf-8")


def signature_payload(private_key, netid, a_der, b_der):
    """The step 2b payload: this identity's signature over (netid, A, B), UTF-8 JSON."""
    return encode_payload(spki_der(private_key), sign(private_key, netid, a_der, b_der))


def _strict_b64(value, member):
    if not isinstance(value, str):
        raise MalformedSignature("%s is not a string" % member)
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as e:
        raise MalformedSignature("%s is not standard padded base64" % member) from e
    # Missing padding, stray bits in the last character and the like: only the one canonical
    # encoding of the bytes is accepted.
    if base64.b64encode(raw).decode("ascii") != value:
        raise MalformedSignature("%s is not canonical standard padded base64" % member)
    return raw


def parse_payload(payload):
    """(identity SPKI DER, signature) from a step 2b payload, strictly.

    Raises MalformedSignature or UnsupportedVersion with a one-line reason. Unknown members
    are ignored.
    """
    try:
        obj = json.loads(bytes(payload).decode("utf-8"))
    except UnicodeDecodeError as e:
        raise MalformedSignature("not UTF-8") from e
    except ValueError as e:
        raise MalformedSignature("not JSON") from e
    if not isinstance(obj, dict):
        raise MalformedSignature("not a JSON object")
    if "version" not in obj:
        raise MalformedSignature("no version")
    version = obj["version"]
    # bool is an int in Python: true must not pass for 1.
    if type(version) is not int:
        raise MalformedSignature("version is not an integer")
    if version != VERSION:
        raise UnsupportedVersion("version %d" % version)
    for member in ("identity", "signature"):
        if member not in obj:
            raise MalformedSignature("no %s" % member)
    identity = _strict_b64(obj["identity"], "identity")
    signature = _strict_b64(obj["signature"], "signature")
    if len(identity) != ED25519_SPKI_LENGTH or not identity.startswith(ED25519_SPKI_PREFIX):
        raise MalformedSignature("identity is not an Ed25519 SubjectPublicKeyInfo")
    if len(signature) != SIGNATURE_LENGTH:
        raise MalformedSignature("signature is %d bytes, not 64" % len(signature))
    return identity, signature


def verify(identity_der, signature, netid, a_der, b_der):
    """Whether `signature` by the identity covers the transcript of (netid, A, B)."""
    try:
        key = ed25519.Ed25519PublicKey.from_public_bytes(
            identity_der[len(ED25519_SPKI_PREFIX):]
        )
        key.verify(signature, transcript(netid, a_der, b_der))
        return True
    except (InvalidSignature, ValueError):
        return False


def check_payload(payload, netid, a_der, b_der, trusted=None):
    """Checks one step 2b payload against (netid, A, B) and, if given, the trusted fingerprints.

    Returns (kind, reason): kind "ok" with the identity's fingerprint as reason, or one of
    "malformed", "version", "untrusted", "mismatch" (a trusted or, without `trusted`, any
    identity whose signature does not cover this key exchange).
    """
    try:
        identity, signature = parse_payload(payload)
    except SignatureRejected as e:
        return e.kind, str(e)
    fp = fingerprint(identity)
    if trusted is not None and fp not in {parse_fingerprint(t) for t in trusted}:
        return "untrusted", "signed by %s, which is not trusted" % fp
    if not verify(identity, signature, netid, a_der, b_der):
        return "mismatch", "the signature by %s does not cover this key exchange" % fp
    return "ok", fp


def token_key(shared, direction, netid, action):
    """The 32-byte key of a bound token: HKDF-SHA256 of the shared secret Z (512 bytes), salt
    one zero byte, info "secure_mqtt token v1" 0x00 DIRECTION 0x00 NETID 0x00 ACTION."""
    if direction not in DIRECTIONS:
        raise ValueError("direction must be request or response")
    levels = [netid, action]
    if any("\x00" in level for level in levels):
        raise ValueError("a netid or action cannot hold NUL")
    info = b"\x00".join([TOKEN_LABEL, direction.encode("ascii")] +
                         [level.encode("utf-8") for level in levels])
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"\x00", info=info).derive(shared)


def token_fernet(shared, direction, netid, action):
    """The Fernet of tokens bound to this direction, netid and action."""
    return Fernet(base64.urlsafe_b64encode(token_key(shared, direction, netid, action)))


def _die(message, code=1):
    print("auth.py: %s" % message, file=sys.stderr)
    return code


def main(argv):
    if len(argv) == 1 and argv[0] == "keygen":
        key = generate_identity()
        sys.stdout.write(identity_pem(key).decode("ascii"))
        sys.stdout.flush()
        print(fingerprint(key), file=sys.stderr)
        return 0
    if len(argv) == 2 and argv[0] == "fingerprint":
        try:
            with open(argv[1], "rb") as f:
                data = f.read()
        except OSError as e:
            return _die("cannot read %s: %s" % (argv[1], e.strerror or e))
        if b"-----BEGIN PUBLIC KEY-----" in data:
            try:
                key = serialization.load_pem_public_key(data)
            except ValueError:
                return _die("%s: not a PEM public key" % argv[1])
            if not isinstance(key, ed25519.Ed25519PublicKey):
                return _die("%s: not an Ed25519 key" % argv[1])
        else:
            try:
                key = load_identity_pem(data)
            except AuthError as e:
                return _die("%s: %s" % (argv[1], e))
        print(fingerprint(key))
        return 0
    if len(argv) in (3, 5) and argv[0] == "token-key":
        try:
            shared = bytes.fromhex(argv[1])
        except ValueError:
            return _die("Z must be hex", 2)
        if argv[2:] == ["lab"]:
            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"\x00",
                       info=b"\x00").derive(shared)
        elif len(argv) == 5:
            try:
                key = token_key(shared, *argv[2:])
            except ValueError as e:
                return _die(str(e), 2)
        else:
            return _die("usage: auth.py token-key Z_HEX lab", 2)
        print(key.hex())
        return 0
    return _die("usage: auth.py keygen | auth.py fingerprint FILE | "
                "auth.py token-key Z_HEX (DIRECTION NETID ACTION | lab)", 2)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
