/**
 * The project's one strict UTF-8 decoder. Every text of the protocol (PEM keys, messages,
 * answers, standard input) is UTF-8; a replacement character would silently change a message
 * instead of refusing it, and a dropped byte-order mark would change it too (Python keeps it).
 *
 * @module
 */

const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decodes `bytes` as UTF-8, keeping every byte (a leading U+FEFF included); `undefined` when
 * they are not valid UTF-8.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeUtf8 } from "./utf8.ts";
 * assert.equal(decodeUtf8(Uint8Array.of(0xef, 0xbb, 0xbf, 0x68, 0x69)), "\ufeffhi");
 * assert.equal(decodeUtf8(Uint8Array.of(0xff)), undefined);
 * ```
 */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strict.decode(bytes);
  } catch {
    return undefined;
  }
}
