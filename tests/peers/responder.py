"""A responding client on pyca/cryptography + paho-mqtt: the lab's reference, plus hostile modes.

usage: responder.py --port PORT [--host HOST] [--mode MODE] [--netid NETID]

Prints "ready" on stdout once its subscriptions are acknowledged, then one line per event.
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
                  is zero (the trap of PROTOCOL.md: stripping it breaks the session)
"""
import argparse
import random
import secrets
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dh

import lab


def transform(action, text):
    if action == "uppercase":
        return text.upper()
    if action == "lowercase":
        return text.lower()
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
    512-byte shared secret starts with 0x00 (the trap of PROTOCOL.md).

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", default="normal")
    ap.add_argument("--netid", default="+")
    args = ap.parse_args()

    params = lab.load_parameters()
    p = params.parameter_numbers().p
    sessions = {}
    client = lab.new_client("py-responder-%d" % random.getrandbits(32))

    def say(line):
        print(line, flush=True)

    def on_connect(c, userdata, flags, rc):
        if args.mode in ("stale-retained", "retained-only"):
            netid = args.netid if args.netid != "+" else "stale"
            for topic in ("key-exchange", "uppercase", "reverse"):
                c.publish("%s/%s/response" % (netid, topic), b"stale retained answer", qos=1, retain=True)
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
            c.publish("%s/key-exchange/response" % netid, reply, qos=1)
            say("key exchange for %s" % netid)
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
