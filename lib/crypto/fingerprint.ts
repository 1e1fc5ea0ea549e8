/**
 * Key fingerprints, as users compare them out of band: `SHA256:` and the 64 lowercase hex
 * digits of SHA-256 over a key's DER SubjectPublicKeyInfo. One form for the responder's
 * Ed25519 identity (what `--trust` takes) and for the DH keys that `-v` shows.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fingerprint, parseFingerprint } from "./fingerprint.ts";
 * const shown = await fingerprint(new TextEncoder().encode("abc"));
 * assert.equal(shown, "SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
 * assert.equal(parseFingerprint(shown.toUpperCase().replace("SHA256", "sha256")), shown);
 * ```
 * @module
 */

/** A fingerprint that is not "SHA256:" and 64 hex digits. */
export class FingerprintError extends Error {
  override name = "FingerprintError";
}

/** "SHA256:" and the 64 lowercase hex digits of SHA-256 over `der`. */
export async function fingerprint(der: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", der as Uint8Array<ArrayBuffer>);
  return "SHA256:" + new Uint8Array(digest).toHex();
}

/**
 * The canonical form of a fingerprint given as "SHA256:" and 64 hex digits, in any case.
 * Throws {@linkcode FingerprintError}, whose message says what was expected, never the input.
 */
export function parseFingerprint(text: string): string {
  const match = /^sha256:([0-9a-f]{64})$/i.exec(text);
  if (!match) throw new FingerprintError('expected "SHA256:" followed by 64 hex digits');
  return "SHA256:" + match[1].toLowerCase();
}
