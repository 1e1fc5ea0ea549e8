/**
 * Public keys a peer must refuse, for the checker to send: well-formed PEM SubjectPublicKeyInfo
 * of y = 1 and y = p-1 (the two small subgroups of a safe prime), a valid key of another group
 * (RFC 7919's ffdhe2048) and one of another generator, and texts that are no key at all. The
 * project's own encoder refuses to write these; here they are built on purpose, from its DER
 * codec.
 *
 * @module
 */

import { encodeBitString, encodeInteger, encodeOid, encodeSequence } from "../crypto/der.ts";
import { type DhGroup, OID_DH_KEY_AGREEMENT, parseDhParamsPem } from "../crypto/dh.ts";
import { modPow } from "../crypto/modpow.ts";
import { pemEncode } from "../crypto/pem.ts";

/** RFC 7919's ffdhe2048 (a 2048-bit safe prime, g = 2), as OpenSSL writes its parameters. */
const FFDHE2048 = `-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
`;

/**
 * A "PUBLIC KEY" PEM of the PKCS#3 form for any `p`, `g` and `y`, checked against nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DhKeyError } from "../crypto/dh.ts";
 * import { loadLabGroup, readPeerPublicKey } from "../protocol/key_agreement.ts";
 * import { unsafePublicKeyPem } from "./hostile_keys.ts";
 * const group = loadLabGroup();
 * const pem = new TextEncoder().encode(unsafePublicKeyPem(group.p, group.g, 1n));
 * assert.throws(() => readPeerPublicKey(group, pem), DhKeyError);
 * ```
 */
export function unsafePublicKeyPem(p: bigint, g: bigint, y: bigint): string {
  const der = encodeSequence(
    encodeSequence(
      encodeOid(OID_DH_KEY_AGREEMENT),
      encodeSequence(encodeInteger(p), encodeInteger(g)),
    ),
    encodeBitString(encodeInteger(y)),
  );
  return pemEncode("PUBLIC KEY", der);
}

/** A key a peer must refuse, and the shared secrets a peer that took it would compute. */
export interface HostileKey {
  /** Names the key in reports: `y = 1`. */
  label: string;
  /** What travels: usually PEM text. */
  payload: string | Uint8Array;
  /**
   * The shared secrets `Z` a peer that accepted the key could derive, 512 bytes as the lab pads
   * them (for y = 1 and y = p-1 everyone can compute them); empty when they are not known.
   */
  secrets: bigint[];
}

function randomExponent(): bigint {
  return BigInt("0x" + crypto.getRandomValues(new Uint8Array(48)).toHex()) | 1n;
}

/** The hostile keys, by name, for the lab's `group`. */
export function hostileKeys(group: DhGroup): Record<
  "y-one" | "y-p-minus-1" | "other-p" | "other-g" | "not-pem",
  HostileKey
> {
  const other = parseDhParamsPem(FFDHE2048);
  const g5 = 5n;
  return {
    "y-one": { label: "y = 1", payload: unsafePublicKeyPem(group.p, group.g, 1n), secrets: [1n] },
    "y-p-minus-1": {
      label: "y = p-1",
      payload: unsafePublicKeyPem(group.p, group.g, group.p - 1n),
      secrets: [1n, group.p - 1n],
    },
    "other-p": {
      label: "a key of RFC 7919's ffdhe2048 group",
      payload: unsafePublicKeyPem(other.p, other.g, modPow(other.g, randomExponent(), other.p)),
      secrets: [],
    },
    "other-g": {
      label: "a key with g = 5",
      payload: unsafePublicKeyPem(group.p, g5, modPow(g5, randomExponent(), group.p)),
      secrets: [],
    },
    "not-pem": {
      label: "text that is not a PEM key",
      payload: "this is not a public key\n",
      secrets: [],
    },
  };
}

/** `z` as the lab writes a shared secret: big-endian, left-padded to the group's length. */
export function secretBytes(group: DhGroup, z: bigint): Uint8Array {
  return Uint8Array.fromHex(z.toString(16).padStart(group.byteLength * 2, "0"));
}

/** `bytes` without its leading zero bytes: the classic bug's shared secret. */
export function stripped(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return bytes.subarray(i);
}
