"""A client on pyca/cryptography + paho-mqtt, to the lab's reference semantics.

usage: client.py [--help] [-h HOST] [-p PORT] NETID ACTION MESSAGE
       client.py [-h HOST] [-p PORT] --zero-lead NETID ACTION MESSAGE
       client.py [-h HOST] [-p PORT] --trust FINGERPRINT [--trust FINGERPRINT ...] NETID ACTION MESSAGE

The lab's command line: -h/--host is the broker (default localhost), -p/--port its port (default
1884), --help the only form of help; the NetID is the MQTT client ID.

Prints the decrypted answer on stdout (exit 0), or a reason on stderr (exit 1).
--zero-lead keeps one private key and repeats key exchanges (the responder makes a fresh key
each time) until the shared secret starts with a zero byte, then does the request with that
key, and prints "zero-lead after N exchanges" on stderr. --count N repeats the request N times
(fresh exchange each time) and prints every answer.
--trust makes it a client of the authenticated key exchange (auth.py): it sends its request
only for a key exchange response signed (step 2b) by one of these identities, prints
"authenticated by SHA256:..." on stderr, and otherwise fails at the deadline with one line that
names the trusted fingerprints and counts what it saw instead.
"""
import argparse
import queue
import sys
import time

import auth
import lab

# How each kind of refused step 2b is reported, for one and for several.
KIND_WORDS = {
    "mismatch": ("signature by the trusted identity did not cover this key exchange",
                 "signatures by the trusted identity did not cover this key exchange"),
    "untrusted": ("signature by an untrusted identity", "signatures by untrusted identities"),
    "malformed": ("malformed signature", "malformed signatures"),
    "version": ("signature of an unsupported version", "signatures of an unsupported version"),
    "unusable": ("signed key exchange response that is not a usable key",
                 "signed key exchange responses that are not usable keys"),
}



def next_until(inbox, deadline):
    """The next (topic, payload) from the inbox, or None once the deadline has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    try:
        return inbox.get(timeout=left)
    except queue.Empty:
        return None

def trusted_fingerprint(text):
    try:
        return auth.parse_fingerprint(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


class AuthFailed(Exception):
    """No key exchange signed by a trusted identity before the deadline."""


class TrustedSession:
    """The client side of step 2b: takes key exchange responses and signatures in any order
    and picks the first response that a trusted identity signed for our A."""

    def __init__(self, netid, our_der, trusted):
        self.netid = netid
        self.our_der = our_der
        self.trusted = trusted
        self.candidates = []  # (PEM, DER) of every key exchange response since our request
        self.held = []  # (identity DER, signature) by a trusted identity, not yet matched
        self.counts = {}
        self.examples = {}
        self.untrusted = []
        self.signatures = 0
        self.unusable_responses = 0

    def count(self, kind, example):
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.examples.setdefault(kind, example)

    def covers(self, identity, signature, b_der):
        return auth.verify(identity, signature, self.netid, self.our_der, b_der)

    def on_response(self, pem):
        """The PEM and signer of this response if a held signature covers it, else None."""
        try:
            b_der = auth.pem_der(pem)
        except ValueError:
            self.unusable_responses += 1
            return None
        self.candidates.append((pem, b_der))
        for i, (identity, signature) in enumerate(self.held):
            if self.covers(identity, signature, b_der):
                del self.held[i]
                return pem, auth.fingerprint(identity)
        return None

    def on_signature(self, payload):
        """The PEM and signer of the first response this signature covers, else None."""
        self.signatures += 1
        try:
            identity, signature = auth.parse_payload(payload)
        except auth.SignatureRejected as e:
            self.count(e.kind, str(e))
            return None
        fp = auth.fingerprint(identity)
        if fp not in self.trusted:
            self.count("untrusted", fp)
            if fp not in self.untrusted:
                self.untrusted.append(fp)
            return None
        for pem, b_der in self.candidates:
            if self.covers(identity, signature, b_der):
                return pem, fp
        self.held.append((identity, signature))
        return None

    def failure(self, timeout, retained):
        """The one line that says what was seen instead of a trusted signature."""
        who = " or ".join(self.trusted)
        seen = []
        if not self.candidates and not self.unusable_responses:
            seen.append("no key exchange response arrived")
        if self.signatures == 0:
            seen.append("no signature arrived")
        if self.held:
            if self.candidates:
                self.counts["mismatch"] = self.counts.get("mismatch", 0) + len(self.held)
            else:
                seen.append("%d signature%s by the trusted identity with no key exchange "
                            "response to cover" % (len(self.held), "s" * (len(self.held) > 1)))
        for kind in ("mismatch", "untrusted", "malformed", "version", "unusable"):
            n = self.counts.get(kind, 0)
            if n == 0:
                continue
            text = "%d %s" % (n, KIND_WORDS[kind][n > 1])
            if kind == "mismatch":
                text += ": possible man in the middle"
            elif kind == "untrusted":
                shown = self.untrusted[:2]
                text += " (%s%s)" % (", ".join(shown), ", ..." * (len(self.untrusted) > 2))
            elif kind in self.examples:
                text += " (e.g. %s)" % self.examples[kind]
            seen.append(text)
        if self.unusable_responses:
            n = self.unusable_responses
            seen.append("%d key exchange response%s not PEM" % (n, "s" * (n > 1)))
        if retained:
            seen.append("%d retained signature%s ignored" % (retained, "s" * (retained > 1)))
        return "no key exchange on %s signed by %s within %g s: %s" % (
            self.netid, who, timeout, "; ".join(seen))


def run_trusted(args, params, client, inbox, subscribed, state, topics):
    """The authenticated client: step 1, then steps 2 and 2b in any order, then 3 and 4."""
    kx_topic, sig_topic, answer_topic = topics
    deadline = time.monotonic() + args.timeout
    try:
        granted = subscribed.get(timeout=args.timeout)
    except queue.Empty:
        raise TimeoutError("no SUBACK within %g s" % args.timeout) from None
    if any(q == 0x80 for q in granted):
        raise RuntimeError("the broker refused a subscription")
    priv = params.generate_private_key()
    ours = lab.public_pem(priv)
    session = TrustedSession(args.netid, auth.pem_der(ours), args.trust)
    state["requested"] = True
    client.publish("%s/key-exchange/request" % args.netid, ours, qos=1)
    fernet = None
    signer = None
    while fernet is None:
        got = next_until(inbox, deadline)
        if got is None:
            raise AuthFailed(session.failure(args.timeout, state["retained"]))
        topic, payload = got
        if topic == kx_topic:
            won = session.on_response(payload)
        elif topic == sig_topic:
            won = session.on_signature(payload)
        else:
            continue
        if won is None:
            continue
        try:
            fernet = lab.fernet_from(priv, won[0])[0]
            signer = won[1]
        except Exception as e:  # signed, yet not a key of our group: not a session
            session.count("unusable", type(e).__name__)
    client.publish("%s/%s/request" % (args.netid, args.action),
                   fernet.encrypt(args.message.encode("utf-8")), qos=1)
    forged = 0
    while True:
        got = next_until(inbox, deadline)
        if got is None:
            raise TimeoutError("no answer on %s within %g s (%d token%s failed to verify)" % (
                answer_topic, args.timeout, forged, "s" * (forged != 1)))
        topic, payload = got
        if topic != answer_topic:
            continue
        try:
            answer = fernet.decrypt(payload).decode("utf-8")
        except Exception:  # another client's answer, or a forgery: not ours
            forged += 1
            continue
        print(answer)
        print("authenticated by %s" % signer, file=sys.stderr)
        return 0


def main():
    # The lab's pattern: -h is the host, so argparse's own -h for help is turned off.
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--help", action="help", help="show this help message and exit")
    ap.add_argument("-h", "--host", default="localhost")
    ap.add_argument("-p", "--port", type=int, default=1884)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--zero-lead", action="store_true")
    ap.add_argument("--max-exchanges", type=int, default=5000)
    ap.add_argument("--trust", action="append", type=trusted_fingerprint, metavar="FINGERPRINT",
                    help="accept only a key exchange signed by this identity (repeatable)")
    ap.add_argument("netid")
    ap.add_argument("action")
    ap.add_argument("message")
    args = ap.parse_args()
    if args.trust and args.zero_lead:
        ap.error("--zero-lead and --trust cannot be combined")

    params = lab.load_parameters()
    inbox = queue.Queue()
    subscribed = queue.Queue()
    kx_topic = "%s/key-exchange/response" % args.netid
    answer_topic = "%s/%s/response" % (args.netid, args.action)
    sig_topic = "%s/key-exchange/signature" % args.netid

    client = lab.new_client(args.netid)  # the lab: the NetID is the client ID
    client.on_subscribe = lambda c, u, mid, granted: subscribed.put(granted)
    if args.trust:
        state = {"requested": False, "retained": 0}
        topics = (kx_topic, sig_topic, answer_topic)

        def on_message(c, u, msg):
            if msg.retain:
                if msg.topic == sig_topic:
                    state["retained"] += 1
            elif state["requested"]:
                inbox.put((msg.topic, msg.payload))

        # One SUBSCRIBE for all three, acknowledged before step 1.
        client.on_connect = lambda c, u, f, rc: c.subscribe([(t, 1) for t in topics])
        client.on_message = on_message
    else:
        client.on_connect = lambda c, u, f, rc: c.subscribe([(kx_topic, 1), (answer_topic, 1)])
        client.on_message = (
            lambda c, u, msg: None if msg.retain else inbox.put((msg.topic, msg.payload))
        )
    try:
        client.connect(args.host, args.port, keepalive=30)
    except (OSError, ValueError) as e:
        print("client.py: cannot connect to %s:%d: %s" % (args.host, args.port, e), file=sys.stderr)
        return 1
    client.loop_start()
    try:
        if args.trust:
            return run_trusted(args, params, client, inbox, subscribed, state, topics)
        return run_lab(args, params, client, inbox, subscribed, kx_topic, answer_topic)
    except Exception as e:
        print("client.py: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    finally:
        # DISCONNECT first: the network thread then wakes at once, instead of sleeping out
        # paho's 1 s select timeout in loop_stop().
        client.disconnect()
        client.loop_stop()


def run_lab(args, params, client, inbox, subscribed, kx_topic, answer_topic):
    """The lab protocol: the first key exchange response after our request is the peer's."""
    deadline = time.monotonic() + args.timeout

    def wait(topic):
        while True:
            got = next_until(inbox, deadline)
            if got is None:
                raise TimeoutError("no message on %s" % topic)
            if got[0] == topic:
                return got[1]

    subscribed.get(timeout=args.timeout)
    priv = params.generate_private_key()
    ours = lab.public_pem(priv)
    exchanges = 0
    while True:
        exchanges += 1
        client.publish("%s/key-exchange/request" % args.netid, ours, qos=1)
        fernet, shared = lab.fernet_from(priv, wait(kx_topic))
        if not args.zero_lead or shared[0] == 0:
            break
        if exchanges >= args.max_exchanges:
            raise RuntimeError("no zero-led shared secret in %d exchanges" % exchanges)
        deadline = time.monotonic() + args.timeout
    if args.zero_lead:
        print("zero-lead after %d exchanges" % exchanges, file=sys.stderr)
    client.publish("%s/%s/request" % (args.netid, args.action),
                   fernet.encrypt(args.message.encode("utf-8")), qos=1)
    print(fernet.decrypt(wait(answer_topic)).decode("utf-8"))
    return 0

if __name__ == "__main__":
    sys.exit(main())
