"""pyca/cryptography (OpenSSL) DH timings for bench/bench.ts, in the same run as ours.

usage: pyca_dh_timing.py DHPARAM_PEM RUNS

Prints one JSON object: per-iteration milliseconds of keygen (generate_private_key + the
public value) and of exchange() against a fixed peer key, plus the private exponent size
OpenSSL chose (these parameters carry no q, so it takes a full-size exponent).
"""
import json
import sys
import time

import cryptography
from cryptography.hazmat.backends.openssl.backend import backend
from cryptography.hazmat.primitives.serialization import load_pem_parameters


def main():
    path, runs = sys.argv[1], int(sys.argv[2])
    with open(path, "rb") as f:
        params = load_pem_parameters(f.read())
    peer = params.generate_private_key().public_key()
    params.generate_private_key().exchange(peer)  # warm-up, as ours gets
    keygen, exchange = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        key = params.generate_private_key()
        key.public_key()
        t1 = time.perf_counter()
        key.exchange(peer)
        t2 = time.perf_counter()
        keygen.append((t1 - t0) * 1e3)
        exchange.append((t2 - t1) * 1e3)
    print(json.dumps({
        "keygen_ms": keygen,
        "exchange_ms": exchange,
        "exponent_bits": key.private_numbers().x.bit_length(),
        "cryptography": cryptography.__version__,
        "openssl": backend.openssl_version_text(),
        "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main()
