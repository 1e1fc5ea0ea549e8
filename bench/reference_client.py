"""The lab's Python path, as a straightforward client: paho-mqtt + pyca/cryptography.

usage: reference_client.py [--host HOST] [--port PORT] [--timeout S] NETID ACTION MESSAGE

The benchmark's yardstick for `main.ts`: same protocol (docs/protocol.md), same broker, same
responder. Lab-style, like tests/peers/client.py without its test extras: subscribe to both
response topics in on_connect, wait for the SUBACK, generate the key pair, publish it, derive
the Fernet key from the answer, send the token, print the decrypted answer. It is not slowed on
purpose: DISCONNECT goes out before loop_stop(), so the network thread wakes at once instead
of sleeping out paho's 1 s select timeout.
"""
import argparse
import base64
import os
import queue
import random
import sys
import time

import paho.mqtt.client as mqtt
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

DHPARAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dhparam4096.pem")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("-p", "--port", type=int, default=1884)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("netid")
    ap.add_argument("action")
    ap.add_argument("message")
    args = ap.parse_args()

    with open(DHPARAM, "rb") as f:
        params = serialization.load_pem_parameters(f.read())
    kx_topic = "%s/key-exchange/response" % args.netid
    answer_topic = "%s/%s/response" % (args.netid, args.action)
    inbox = queue.Queue()
    subscribed = queue.Queue()

    client_id = "%s-ref-%08x" % (args.netid, random.getrandbits(32))
    if hasattr(mqtt, "CallbackAPIVersion"):  # paho-mqtt 2
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=client_id)
    else:
        client = mqtt.Client(client_id=client_id, clean_session=True)
    client.on_connect = lambda c, u, f, rc: c.subscribe([(kx_topic, 1), (answer_topic, 1)])
    client.on_subscribe = lambda c, u, mid, granted: subscribed.put(granted)
    client.on_message = lambda c, u, m: None if m.retain else inbox.put((m.topic, m.payload))
    client.connect(args.host, args.port, keepalive=30)
    client.loop_start()
    deadline = time.monotonic() + args.timeout

    def wait(topic):
        while True:
            got, payload = inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            if got == topic:
                return payload

    try:
        subscribed.get(timeout=args.timeout)
        private_key = params.generate_private_key()
        ours = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        client.publish("%s/key-exchange/request" % args.netid, ours, qos=1)
        peer = serialization.load_pem_public_key(wait(kx_topic))
        shared = private_key.exchange(peer)
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"\x00", info=b"\x00").derive(shared)
        fernet = Fernet(base64.urlsafe_b64encode(key))
        client.publish("%s/%s/request" % (args.netid, args.action),
                       fernet.encrypt(args.message.encode("utf-8")), qos=1)
        print(fernet.decrypt(wait(answer_topic)).decode("utf-8"), flush=True)
        return 0
    except Exception as e:
        print("reference_client.py: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    finally:
        client.disconnect()
        client.loop_stop()


if __name__ == "__main__":
    sys.exit(main())
