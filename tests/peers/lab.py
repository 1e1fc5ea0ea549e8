"""The lab's reference crypto, exactly as pyca/cryptography does it (shared by the peers).

Written independently of our TypeScript: it is what we interoperate with, not a copy of it.
"""
import base64
import os

import paho.mqtt.client as mqtt
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HERE = os.path.dirname(os.path.abspath(__file__))
DHPARAM = os.path.join(HERE, "..", "..", "dhparam4096.pem")


def load_parameters(path=DHPARAM):
    with open(path, "rb") as f:
        return serialization.load_pem_parameters(f.read())


def public_pem(private_key):
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fernet_from_shared(shared):
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"\x00", info=b"\x00").derive(shared)
    return Fernet(base64.urlsafe_b64encode(key))


def fernet_from(private_key, peer_pem):
    peer = serialization.load_pem_public_key(peer_pem)
    shared = private_key.exchange(peer)
    return fernet_from_shared(shared), shared


def new_client(client_id):
    # paho-mqtt 2 wants the callback API version; 1.x has no such argument.
    if hasattr(mqtt, "CallbackAPIVersion"):
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=client_id, clean_session=True)
    return mqtt.Client(client_id=client_id, clean_session=True)
