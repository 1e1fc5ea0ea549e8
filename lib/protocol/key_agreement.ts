/**
 * The key agreement of the lab protocol (docs/protocol.md, "Diffie-Hellman" and "Key
 * derivation"): the lab's group, a peer's public key as it arrives, and the session's Fernet.
 *
 * @module
 */

import {
  computeSharedSecret,
  decodePeerPublicKey,
  decodePublicKeyPem,
  type DhGroup,
  DhKeyError,
  type DhKeyPair,
  type DhOptions,
  parseDhParamsPem,
  type PeerPublicKey,
} from "../crypto/dh.ts";
import { deriveFernetKey } from "../crypto/hkdf.ts";
import { Fernet } from "../crypto/fernet.ts";
import { decodeUtf8 } from "../utf8.ts";
import { MAX_PUBLIC_KEY_PEM_BYTES } from "./limits.ts";
// A text import, not a file read: the PEM is part of the module graph, so `deno compile` embeds
// it, and neither the binaries nor `deno run` need a read permission or a working directory.
import labDhParamsPem from "../../dhparam4096.pem" with { type: "text" };

/**
 * The lab's Diffie-Hellman group, from the `dhparam4096.pem` at the project root (embedded in
 * the module graph). Parses on each call: keep the result.
 */
export function loadLabGroup(): DhGroup {
  return parseDhParamsPem(labDhParamsPem);
}

/**
 * A peer's public key as it arrives in step 1 or 2: at most {@linkcode MAX_PUBLIC_KEY_PEM_BYTES}
 * of UTF-8 PEM, checked against our group. Throws `DhKeyError` only, with a one-line reason.
 */
export function readPeerPublicKey(group: DhGroup, payload: Uint8Array): PeerPublicKey & {
  pem: string;
} {
  if (payload.length > MAX_PUBLIC_KEY_PEM_BYTES) {
    throw new DhKeyError(
      `peer public key is malformed: ${payload.length} bytes is over the ` +
        `${MAX_PUBLIC_KEY_PEM_BYTES}-byte limit`,
    );
  }
  const pem = decodeUtf8(payload);
  if (pem === undefined) throw new DhKeyError("peer public key is malformed: not UTF-8 text");
  return { ...decodePeerPublicKey(group, pem), pem };
}

/**
 * Turns our key pair and the peer's public key into the session's Fernet: the peer key is
 * checked (a `DhKeyError` says why it is refused), `Z` is computed as 512 zero-padded bytes,
 * stretched with HKDF-SHA256 (salt and info one zero byte each), and keys Fernet.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodePublicKeyPem, generateKeyPair } from "../crypto/dh.ts";
 * import { agreeFernet, loadLabGroup } from "./key_agreement.ts";
 * const group = loadLabGroup();
 * const alice = generateKeyPair(group), bob = generateKeyPair(group);
 * const a = await agreeFernet(group, alice, encodePublicKeyPem(group, bob.publicKey));
 * const b = await agreeFernet(group, bob, encodePublicKeyPem(group, alice.publicKey));
 * const plain = await b.decrypt(await a.encrypt("hello"));
 * assert.equal(new TextDecoder().decode(plain), "hello");
 * ```
 */
export async function agreeFernet(
  group: DhGroup,
  ours: DhKeyPair,
  peerPem: string,
): Promise<Fernet> {
  return await fernetFor(group, ours, decodePublicKeyPem(group, peerPem));
}

/**
 * {@linkcode agreeFernet} for a peer key already checked and decoded to `y`; `options` carry a
 * long-running caller's `DhPrecomputation`.
 */
export async function fernetFor(
  group: DhGroup,
  ours: DhKeyPair,
  peerY: bigint,
  options: DhOptions = {},
): Promise<Fernet> {
  const z = computeSharedSecret(group, ours.privateKey, peerY, options);
  return await Fernet.create(await deriveFernetKey(z));
}
