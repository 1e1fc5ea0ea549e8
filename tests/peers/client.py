"""A client on pyca/cryptography + paho-mqtt, to the lab's reference semantics.

usage: client.py --port PORT [--host HOST] NETID ACTION MESSAGE
       client.py --port PORT --zero-lead NETID ACTION MESSAGE

Prints the decrypted answer on stdout (exit 0), or a reason on stderr (exit 1).
--zero-lead keeps one private key and repeats key exchanges (the responder makes a fresh key
each time) until the shared secret starts with a zero byte, then does the request with that
key, and prints "zero-lead after N exchanges" on stderr. --count N repeats the request N times
(fresh exchange each time) and prints every answer.
"""
import argparse
import queue
import random
import sys
import time

import lab


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--zero-lead", action="store_true")
    ap.add_argument("--max-exchanges", type=int, default=5000)
    ap.add_argument("netid")
    ap.add_argument("action")
    ap.add_argument("message")
    args = ap.parse_args()

    params = lab.load_parameters()
    inbox = queue.Queue()
    subscribed = queue.Queue()
    kx_topic = "%s/key-exchange/response" % args.netid
    answer_topic = "%s/%s/response" % (args.netid, args.action)

    client = lab.new_client("%s-py-%d" % (args.netid, random.getrandbits(32)))
    client.on_connect = lambda c, u, f, rc: c.subscribe([(kx_topic, 1), (answer_topic, 1)])
    client.on_subscribe = lambda c, u, mid, granted: subscribed.put(granted)
    client.on_message = lambda c, u, msg: None if msg.retain else inbox.put((msg.topic, msg.payload))
    client.connect(args.host, args.port, keepalive=30)
    client.loop_start()
    deadline = time.monotonic() + args.timeout

    def wait(topic):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message on %s" % topic)
            got_topic, payload = inbox.get(timeout=left)
            if got_topic == topic:
                return payload

    try:
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
    except Exception as e:
        print("client.py: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    finally:
        client.loop_stop()
        client.disconnect()


if __name__ == "__main__":
    sys.exit(main())
