/**
 * The bound-token keys of the authenticated extension (docs/protocol.md, "Bound tokens"): after
 * a signed key exchange, each token is under a key bound to its direction, netid and action,
 * `HKDF-SHA256(Z, salt 0x00, info "secure_mqtt token v1" 0x00 DIR 0x00 NETID 0x00 ACTION)`.
 *
 * The checker's own copy, for `responder.auth.bound-tokens`, until the library has one.
 *
 * @module
 */

import { hkdfSha256 } from "../crypto/hkdf.ts";

const LABEL = "secure_mqtt token v1";

/**
 * The 32-byte key of a bound token: `direction` is `request` (client to responder) or
 * `response`; `z` is the 512-byte zero-padded shared secret.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { boundTokenKey } from "./bound_key.ts";
 * const z = new Uint8Array(512).fill(1);
 * const key = await boundTokenKey(z, "request", "le0nh4rt", "uppercase");
 * assert.equal(key.toHex(), "53a98e432afd27e0dafd95fe01f283eea4795abb38dac83e9694c7d83acbfaf8");
 * ```
 */
export function boundTokenKey(
  z: Uint8Array,
  direction: "request" | "response",
  netid: string,
  action: string,
): Promise<Uint8Array> {
  const info = new TextEncoder().encode(`${LABEL}\0${direction}\0${netid}\0${action}`);
  return hkdfSha256(z, Uint8Array.of(0), info, 32);
}
