"""A responding client on pyca/cryptography + paho-mqtt: the lab's reference, plus hostile modes.

usage: responder.py [--help] [-h HOST] [-p PORT] [--mode MODE] [--netid NETID] [--identity FILE]

-h/--host is the broker (default localhost), -p/--port its port (default 1884), as in the lab.

Prints "ready" on stdout once its subscriptions are acknowledged, then one line per event.
With --identity (a PKCS#8 PEM Ed25519 key) it signs every key exchange it answers: step 2b of
the authenticated key exchange (auth.py), right after step 2, QoS 1, not retained.
Modes (all but "normal" misbehave on purpose, to test the client):
  normal          answer every request correctly
  garbage-key     answer the key exchange with text that is not a PEM key
  y-one           answer with a well-formed key whose y = 1
  y-p-minus-1     answer with a well-formed key whose y = p - 1
  foreign-params  answer with a valid key in another group (a different safe prime... or g)
  tamper-token    answer correctly but flip one byte of the token's MAC
  forged-then-ok  send one token under a wrong key first, then the right answer
  silent-key      never answer the key exchange
  silent-action   answer the key exchange, never the action
  stale-retained  before "ready", retain a (valid-looking) answer on the response topics,
                  then behave normally
  retained-only   retain answers on the response topics and otherwise stay silent
  zero-lead       answer correctly, choosing our key so that the shared secret's first byte
                  is zero (the trap of docs/protocol.md: stripping it breaks the session)
Modes of the authenticated key exchange (each needs --identity):
  no-signature          answer step 2, never publish step 2b
  other-identity        sign with a fresh identity made at start, not the --identity one
  corrupt-signature     flip one bit of the signature
  substitute-a          sign a transcript with another A (as if the broker replaced the
                        client's key)
  substitute-b          publish our B but sign a transcript with another B' (as if the broker
                        replaced ours)
  signature-first       publish step 2b (valid) before step 2
  retained-signature    before "ready", retain a signature by the identity over an old,
                        unrelated key exchange on <netid>/key-exchange/signature (netid "stale"
                        unless --netid), then answer with no live step 2b
  retained-then-signed  the same retained signature, then sign live as usual
  junk-signatures       before each valid step 2b, a burst of malformed, unsupported,
                        untrusted and non-covering ones
  junk-only             the same burst, and no valid step 2b
  version-2             a correct signature, but "version": 2
"""
import argparse
import base64
import json
import random
import secrets
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dh

import auth
import lab

AUTH_MODES = {
    "no-signature",
    "other-identity",
    "corrupt-signature",
    "substitute-a",
    "substitute-b",
    "signature-first",
    "retained-signature",
    "retained-then-signed",
    "junk-signatures",
    "junk-only",
    "version-2",
}
# Modes that publish no valid live step 2b by the --identity key.
UNSIGNED_MODES = {"no-signature", "retained-signature", "junk-only"}
BAD_SIGNATURE_MODES = {
    "other-identity", "corrupt-signature", "substitute-a", "substitute-b", "version-2"
}
JUNK_MODES = {"junk-signatures", "junk-only"}
# SPKI of an X25519 key (OID 1.3.101.110): the same length as Ed25519's, the wrong algorithm.
X25519_SPKI_PREFIX = bytes.fromhex("302a300506032b656e032100")


def transform(action, text):
    if action == "uppercase":
        return text.upper()
    if action == "lowercase":
        return text.lower()
    if action == "title-case":
        return text.title()
    if action == "reverse":
        return text[::-1]
    if action == "shuffle":
        chars = list(text)
        random.shuffle(chars)
        return "".join(chars)
    if action == "random":
        return "".join(c * random.randint(0, 2) for c in text)
    return None


def pem_with_y(params, y):
    numbers = params.parameter_numbers()
    return dh.DHPublicNumbers(y, numbers).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def zero_lead_session(params, client_pem):
    """Our public PEM and Fernet for a private key b with A^b mod p < 2^4088, so that the
    512-byte shared secret starts with 0x00 (the trap of docs/protocol.md).

    Steps b by one and multiplies Z by A each time: one modular multiplication a candidate,
    about 256 candidates expected. Done with Python integers because pyca's
    DHPrivateNumbers(...).private_key() re-checks the group (seconds); the public half and
    HKDF/Fernet are still pyca's.
    """
    numbers = params.parameter_numbers()
    p, g = numbers.p, numbers.g
    a = serialization.load_pem_public_key(client_pem).public_numbers().y
    if not 2 <= a <= p - 2:
        raise ValueError("client key out of range")
    b = secrets.randbits(320) | (1 << 319)
    z = pow(a, b, p)
    while z >> (8 * 511) != 0:
        b += 1
        z = z * a % p
    return pem_with_y(params, pow(g, b, p)), lab.fernet_from_shared(z.to_bytes(512, "big"))


def junk_payloads(identity, netid, a_der, b_der):
    """Step 2b payloads a strict client must refuse, most carrying the valid signature in a
    wrong form (so that a lax client would take them): (label, payload) pairs."""
    spki = auth.spki_der(identity)
    sig = auth.sign(identity, netid, a_der, b_der)
    i64 = base64.b64encode(spki).decode("ascii")
    s64 = base64.b64encode(sig).decode("ascii")

    def obj(**members):
        return json.dumps(members, separators=(",", ":")).encode("utf-8")

    big = base64.b64encode(secrets.token_bytes(48 * 1024)).decode("ascii")
    junk = [
        ("empty", b""),
        ("not JSON", b"not json at all"),
        ("not UTF-8", b"\xff\xfe{\"version\":1}"),
        ("JSON array", b"[1,2,3]"),
        ("JSON null", b"null"),
        ("JSON number", b"1"),
        ("JSON string", json.dumps(auth.signature_payload(identity, netid, a_der, b_der)
                                   .decode("utf-8")).encode("utf-8")),
        ("empty object", b"{}"),
        ("version 2", obj(version=2, identity=i64, signature=s64)),
        ("version \"1\"", obj(version="1", identity=i64, signature=s64)),
        ("version true", obj(version=True, identity=i64, signature=s64)),
        ("version null", obj(version=None, identity=i64, signature=s64)),
        ("no version", obj(identity=i64, signature=s64)),
        ("no identity", obj(version=1, signature=s64)),
        ("no signature", obj(version=1, identity=i64)),
        ("identity null", obj(version=1, identity=None, signature=s64)),
        ("signature a number", obj(version=1, identity=i64, signature=12345)),
        ("identity an array", obj(version=1, identity=list(spki), signature=s64)),
        ("url-safe signature", obj(
            version=1, identity=i64, signature=base64.urlsafe_b64encode(sig).decode("ascii")
        )),
        ("url-safe identity", obj(
            version=1, identity=base64.urlsafe_b64encode(spki).decode("ascii"), signature=s64
        )),
        ("identity without padding", obj(version=1, identity=i64.rstrip("="), signature=s64)),
        ("signature without padding", obj(version=1, identity=i64, signature=s64.rstrip("="))),
        ("line break in base64",
         obj(version=1, identity=i64, signature=s64[:40] + "\n" + s64[40:])),
        ("spaces around base64", obj(version=1, identity=" " + i64, signature=s64 + " ")),
        ("63-byte signature", obj(version=1, identity=i64,
                                  signature=base64.b64encode(sig[:63]).decode("ascii"))),
        ("65-byte signature", obj(version=1, identity=i64,
                                  signature=base64.b64encode(sig + b"\x00").decode("ascii"))),
        ("empty signature", obj(version=1, identity=i64, signature="")),
        ("X25519 SPKI identity", auth.encode_payload(X25519_SPKI_PREFIX + spki[12:], sig)),
        ("45-byte identity", auth.encode_payload(spki + b"\x00", sig)),
        ("43-byte identity", auth.encode_payload(spki[:43], sig)),
        ("raw 32-byte identity", auth.encode_payload(spki[12:], sig)),
        ("64 KiB identity", obj(version=1, identity=big, signature=s64)),
        ("64 KiB of random bytes", secrets.token_bytes(64 * 1024)),
        ("all-zero signature", auth.encode_payload(spki, bytes(64))),
        ("signature for another netid",
         auth.signature_payload(identity, netid + "-other", a_der, b_der)),
        ("A and B swapped", auth.signature_payload(identity, netid, b_der, a_der)),
        ("another identity", auth.signature_payload(auth.generate_identity(), netid, a_der, b_der)),
    ]
    # The identity's encoding is fixed by the key: with neither "+" nor "/" in it, its url-safe
    # form would be the valid step 2b itself.
    return [(label, bad) for label, bad in junk
            if label != "url-safe identity" or any(c in i64 for c in "+/")]


def signature_payload(mode, identity, other_identity, params, netid, a_der, b_der):
    """The step 2b this mode publishes, or None for none."""
    if mode in UNSIGNED_MODES:
        return None
    if mode == "other-identity":
        return auth.signature_payload(other_identity, netid, a_der, b_der)
    if mode == "corrupt-signature":
        sig = bytearray(auth.sign(identity, netid, a_der, b_der))
        sig[0] ^= 0x01
        return auth.encode_payload(auth.spki_der(identity), bytes(sig))
    if mode == "substitute-a":
        other_a = auth.pem_der(lab.public_pem(params.generate_private_key()))
        return auth.signature_payload(identity, netid, other_a, b_der)
    if mode == "substitute-b":
        other_b = auth.pem_der(lab.public_pem(params.generate_private_key()))
        return auth.signature_payload(identity, netid, a_der, other_b)
    if mode == "version-2":
        sig = auth.sign(identity, netid, a_der, b_der)
        return auth.encode_payload(auth.spki_der(identity), sig, version=2)
    return auth.signature_payload(identity, netid, a_der, b_der)


def encodings_differ(identity, netid, a_der, b_der):
    """Whether the url-safe base64 of this exchange's signature differs from the standard one
    (one exchange in about 15 has neither "+" nor "/", and its url-safe junk would be a valid
    step 2b)."""
    s64 = base64.b64encode(auth.sign(identity, netid, a_der, b_der))
    return b"+" in s64 or b"/" in s64


def main():
    ap = argparse.ArgumentParser(add_help=False)  # -h is the host, as in the lab
    ap.add_argument("--help", action="help", help="show this help message and exit")
    ap.add_argument("-h", "--host", default="localhost")
    ap.add_argument("-p", "--port", type=int, default=1884)
    ap.add_argument("--mode", default="normal")
    ap.add_argument("--netid", default="+")
    ap.add_argument("--identity", metavar="FILE", help="PKCS#8 PEM Ed25519 key: sign step 2b")
    args = ap.parse_args()
    identity = None
    if args.identity is not None:
        try:
            identity = auth.load_identity(args.identity)
        except auth.AuthError as e:
            ap.error(str(e))
    elif args.mode in AUTH_MODES:
        ap.error("--mode %s needs --identity" % args.mode)
    other_identity = auth.generate_identity() if args.mode == "other-identity" else None

    params = lab.load_parameters()
    p = params.parameter_numbers().p
    sessions = {}
    client = lab.new_client("py-responder-%d" % random.getrandbits(32))

    def say(line):
        print(line, flush=True)

    def signature_publisher(c, netid, a_der, b_der):
        """What publishes this mode's step 2b (and its junk) for one key exchange."""
        topic = "%s/key-exchange/signature" % netid
        mode = args.mode
        payload = signature_payload(mode, identity, other_identity, params, netid, a_der, b_der)

        def publish():
            if mode in JUNK_MODES:
                junk = junk_payloads(identity, netid, a_der, b_der)
                for _label, bad in junk:
                    c.publish(topic, bad, qos=1)
                say("sent %d junk signatures for %s" % (len(junk), netid))
            if payload is None:
                say("no signature for %s (%s)" % (netid, mode))
                return
            c.publish(topic, payload, qos=1)
            if mode in BAD_SIGNATURE_MODES:
                say("sent a bad signature for %s (%s)" % (netid, mode))
            else:
                say("signed key exchange for %s" % netid)

        return publish

    def on_connect(c, userdata, flags, rc):
        if args.mode in ("stale-retained", "retained-only"):
            netid = args.netid if args.netid != "+" else "stale"
            for topic in ("key-exchange", "uppercase", "reverse"):
                c.publish("%s/%s/response" % (netid, topic), b"stale retained answer", qos=1, retain=True)
        if args.mode in ("retained-signature", "retained-then-signed"):
            netid = args.netid if args.netid != "+" else "stale"
            old_a = auth.pem_der(lab.public_pem(params.generate_private_key()))
            old_b = auth.pem_der(lab.public_pem(params.generate_private_key()))
            topic = "%s/key-exchange/signature" % netid
            c.publish(topic, auth.signature_payload(identity, netid, old_a, old_b), qos=1,
                      retain=True)
            say("retained an old signature on %s" % topic)
        c.subscribe([("%s/key-exchange/request" % args.netid, 1), ("%s/+/request" % args.netid, 1)])

    def on_subscribe(c, userdata, mid, granted):
        say("ready")

    def on_message(c, userdata, msg):
        if msg.retain:
            return
        parts = msg.topic.split("/")
        if len(parts) != 3 or parts[2] != "request":
            return
        netid, action = parts[0], parts[1]
        mode = args.mode
        if mode == "retained-only":
            return
        if action == "key-exchange":
            if mode == "silent-key":
                return
            priv = None
            try:
                if mode == "zero-lead":
                    zero_lead_pem, sessions[netid] = zero_lead_session(params, msg.payload)
                else:
                    priv = params.generate_private_key()
                    if mode in JUNK_MODES:
                        a_der = auth.pem_der(msg.payload)
                        for _ in range(50):
                            b_der = auth.pem_der(lab.public_pem(priv))
                            if encodings_differ(identity, netid, a_der, b_der):
                                break
                            priv = params.generate_private_key()
                    sessions[netid] = lab.fernet_from(priv, msg.payload)[0]
            except Exception as e:  # a bad client key: log and drop
                say("bad key from %s: %s" % (netid, type(e).__name__))
                return
            if mode == "garbage-key":
                reply = b"-----BEGIN PUBLIC KEY-----\nnot base64 at all!\n-----END PUBLIC KEY-----\n"
            elif mode == "y-one":
                reply = pem_with_y(params, 1)
            elif mode == "y-p-minus-1":
                reply = pem_with_y(params, p - 1)
            elif mode == "foreign-params":
                other = dh.DHParameterNumbers(p, 5).parameters()
                reply = other.generate_private_key().public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            elif mode == "zero-lead":
                reply = zero_lead_pem
            else:
                reply = lab.public_pem(priv)
            publish_signature = None
            if identity is not None:
                try:
                    a_der, b_der = auth.pem_der(msg.payload), auth.pem_der(reply)
                except ValueError as e:
                    say("not signing for %s: %s" % (netid, e))
                else:
                    publish_signature = signature_publisher(c, netid, a_der, b_der)
            if publish_signature is not None and mode == "signature-first":
                publish_signature()
                publish_signature = None
            c.publish("%s/key-exchange/response" % netid, reply, qos=1)
            say("key exchange for %s" % netid)
            if publish_signature is not None:
                publish_signature()
            return
        f = sessions.get(netid)
        if f is None or mode == "silent-action":
            return
        try:
            text = f.decrypt(msg.payload).decode("utf-8")
        except Exception as e:
            say("bad request from %s: %s" % (netid, type(e).__name__))
            return
        answer = transform(action, text)
        if answer is None:
            return
        token = f.encrypt(answer.encode("utf-8"))
        topic = "%s/%s/response" % (netid, action)
        if mode == "tamper-token":
            raw = bytearray(__import__("base64").urlsafe_b64decode(token))
            raw[-1] ^= 0x01
            token = __import__("base64").urlsafe_b64encode(bytes(raw))
        if mode == "forged-then-ok":
            from cryptography.fernet import Fernet
            c.publish(topic, Fernet(Fernet.generate_key()).encrypt(b"FORGED"), qos=1)
        c.publish(topic, token, qos=1)
        say("answered %s/%s" % (netid, action))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(args.host, args.port, keepalive=30)
    try:
        client.loop_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
