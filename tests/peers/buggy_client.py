"""A lab client (pyca/cryptography + paho-mqtt) with at most one typical bug, for the tests of
secure_mqtt_check: each bug must be flagged on exactly the cases that look for it.

usage: buggy_client.py [--bug NAME] [--help] [-v] [-h HOST] [-p PORT] [--timeout SECONDS]
                       NETID ACTION MESSAGE

Without --bug it follows the lab: -h is the host, the NetID is the client ID, QoS 1 everywhere,
the SUBACK before the key, retained messages ignored, a token that fails to verify skipped until
the deadline, the answer alone on stdout, one line on stderr and exit 1 on a failure.

bugs:
  zero-strip     strips the shared secret's leading zero bytes (1 exchange in 256 fails)
  qos0           subscribes and publishes at QoS 0
  early-publish  publishes its key without waiting for the SUBACK
  retained       takes retained messages for live ones
  h-help         -h is help (argparse's default); the host is --host only
  stdout-debug   prints its debug lines on stdout, always
  exit0          exits 0 after a runtime failure
  no-timeout     waits for ever
"""
import argparse
import base64
import queue
import sys
import time

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import lab

BUGS = ("zero-strip", "qos0", "early-publish", "retained", "h-help", "stdout-debug", "exit0",
        "no-timeout")
ACTIONS = ("uppercase", "lowercase", "title-case", "reverse", "shuffle", "random")


class Failure(Exception):
    """A runtime failure, already worded for stderr."""


def take_bug(argv):
    """The --bug NAME (or --bug=NAME) in argv, removed from it, or None."""
    for i, arg in enumerate(argv):
        if arg == "--bug" and i + 1 < len(argv):
            name = argv[i + 1]
            del argv[i:i + 2]
            return name
        if arg.startswith("--bug="):
            del argv[i]
            return arg[len("--bug="):]
    return None


def parse(argv, bug):
    if bug == "h-help":
        ap = argparse.ArgumentParser(prog="buggy_client.py")
        ap.add_argument("--host", default="localhost")
    else:
        ap = argparse.ArgumentParser(prog="buggy_client.py", add_help=False)
        ap.add_argument("--help", action="help", help="show this help message and exit")
        ap.add_argument("-h", "--host", default="localhost")
    ap.add_argument("-p", "--port", type=int, default=1884)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("netid")
    ap.add_argument("action", choices=ACTIONS)
    ap.add_argument("message")
    return ap.parse_args(argv)


def main():
    argv = sys.argv[1:]
    bug = take_bug(argv)
    if bug is not None and bug not in BUGS:
        print("buggy_client.py: error: unknown bug %r (one of %s)" % (bug, ", ".join(BUGS)),
              file=sys.stderr)
        return 2
    args = parse(argv, bug)

    def debug(line):
        if bug == "stdout-debug":
            print("debug: " + line, flush=True)
        elif args.verbose:
            print("buggy_client.py: debug: " + line, file=sys.stderr, flush=True)

    try:
        print(run(args, bug, debug))
        return 0
    except Failure as e:
        print("buggy_client.py: error: %s" % e, file=sys.stderr)
        return 0 if bug == "exit0" else 1


def run(args, bug, debug):
    qos = 0 if bug == "qos0" else 1
    deadline = None if bug == "no-timeout" else time.monotonic() + args.timeout
    kx_topic = "%s/key-exchange/response" % args.netid
    answer_topic = "%s/%s/response" % (args.netid, args.action)
    request_topic = "%s/key-exchange/request" % args.netid
    inbox = queue.Queue()
    subscribed = queue.Queue()

    def next_message(what):
        """The next (topic, payload) that arrives, or a Failure at the deadline."""
        try:
            if deadline is None:
                return inbox.get()
            return inbox.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise Failure("no %s within %g s" % (what, args.timeout)) from None

    private_key = lab.load_parameters().generate_private_key()
    ours = lab.public_pem(private_key)

    def on_connect(c, userdata, flags, rc):
        c.subscribe([(kx_topic, qos), (answer_topic, qos)])
        if bug == "early-publish":
            c.publish(request_topic, ours, qos=qos)

    def on_message(c, userdata, msg):
        if msg.retain and bug != "retained":
            return
        inbox.put((msg.topic, msg.payload))

    client = lab.new_client(args.netid)
    client.on_connect = on_connect
    client.on_subscribe = lambda c, userdata, mid, granted: subscribed.put(granted)
    client.on_message = on_message
    debug("connecting to %s:%d" % (args.host, args.port))
    try:
        client.connect(args.host, args.port, keepalive=30)
    except (OSError, ValueError) as e:
        raise Failure("cannot connect to %s:%d: %s" % (args.host, args.port, e)) from None
    client.loop_start()
    try:
        if bug != "early-publish":
            try:
                subscribed.get(timeout=None if deadline is None else args.timeout)
            except queue.Empty:
                raise Failure("no SUBACK within %g s" % args.timeout) from None
            debug("subscribed")
            client.publish(request_topic, ours, qos=qos)
        debug("key sent")
        while True:
            topic, payload = next_message("key exchange response")
            if topic == kx_topic:
                break
        try:
            peer = serialization.load_pem_public_key(payload)
            shared = private_key.exchange(peer)
        except Exception as e:  # noqa: BLE001 - any bad key is one failure
            raise Failure("the responder's key is unusable: %s" % (e or type(e).__name__)) from None
        if bug == "zero-strip":
            shared = shared.lstrip(b"\0")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"\x00", info=b"\x00").derive(shared)
        fernet = Fernet(base64.urlsafe_b64encode(key))
        client.publish("%s/%s/request" % (args.netid, args.action),
                       fernet.encrypt(args.message.encode("utf-8")), qos=qos)
        debug("request sent")
        while True:
            topic, payload = next_message("answer")
            if topic != answer_topic:
                continue
            try:
                return fernet.decrypt(payload).decode("utf-8")
            except (InvalidToken, UnicodeDecodeError):
                debug("a token that does not verify: not ours, still waiting")
    finally:
        client.disconnect()
        client.loop_stop()


if __name__ == "__main__":
    sys.exit(main())
