/**
 * The key agreement of the lab protocol (docs/protocol.md, "Diffie-Hellman" and "Key
 * derivation"): the lab's group, a peer's public key as it arrives, and the secret the two
 * agree, from which the session's keys come.
 *
 * @module
 */

import {
  computeSharedSecret,
  decodePeerPublicKey,
  type DhGroup,
  DhKeyError,
  type DhKeyPair,
  type DhOptions,
  parseDhParamsPem,
  type PeerPublicKey,
} from "../crypto/dh.ts";
import { deriveBoundKey, deriveFernetKey, type TokenBinding } from "../crypto/hkdf.ts";
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
 * The secret one key exchange agreed: `Z`, the shared secret as 512 zero-padded bytes, and the
 * keys the protocol derives from it. `Z` stays inside; only derived keys come out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodePublicKeyPem, generateKeyPair } from "../crypto/dh.ts";
 * import { loadLabGroup, readPeerPublicKey, SessionSecret } from "./key_agreement.ts";
 * const group = loadLabGroup();
 * const alice = generateKeyPair(group), bob = generateKeyPair(group);
 * // Each side reads the other's public key as it arrives, and agrees the same secret.
 * const wire = (pair: typeof bob) => new TextEncoder().encode(encodePublicKeyPem(group, pair.publicKey));
 * const a = await SessionSecret.agree(group, alice, readPeerPublicKey(group, wire(bob)).y);
 * const b = await SessionSecret.agree(group, bob, readPeerPublicKey(group, wire(alice)).y);
 * const token = await (await a.labFernet()).encrypt("hello");
 * assert.equal(new TextDecoder().decode(await (await b.labFernet()).decrypt(token)), "hello");
 * ```
 */
export class SessionSecret {
  readonly #z: Uint8Array;

  private constructor(z: Uint8Array) {
    this.#z = z;
  }

  /**
   * `Z = peerY^x mod p` for our key pair and a peer's `y` that {@linkcode readPeerPublicKey}
   * accepted; `options` carry a long-running caller's `DhPrecomputation`.
   */
  static agree(
    group: DhGroup,
    ours: DhKeyPair,
    peerY: bigint,
    options: DhOptions = {},
  ): SessionSecret {
    return new SessionSecret(computeSharedSecret(group, ours.privateKey, peerY, options));
  }

  /** The lab protocol's Fernet: HKDF-SHA256 of `Z`, salt and info one zero byte each. */
  async labFernet(): Promise<Fernet> {
    return await Fernet.create(await deriveFernetKey(this.#z));
  }

  /**
   * The Fernet of tokens bound to one direction, netid and action: what a client and a
   * responder use after a key exchange that a trusted identity signed.
   */
  async boundFernet(binding: TokenBinding): Promise<Fernet> {
    return await Fernet.create(await deriveBoundKey(this.#z, binding));
  }
}
