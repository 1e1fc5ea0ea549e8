/**
 * Runs code with `crypto.getRandomValues` answering from fixed bytes, so that a Fernet token
 * (whose IV is always fresh from it) can be made reproducible in a test, the way the spec's
 * "generate" vectors need.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withFixedRandom } from "./fixed_random.ts";
 * const bytes = await withFixedRandom(Uint8Array.of(7, 8), () => {
 *   return Promise.resolve(crypto.getRandomValues(new Uint8Array(2)));
 * });
 * assert.deepEqual(bytes, Uint8Array.of(7, 8));
 * ```
 * @module
 */

/**
 * Calls `fn` with every `crypto.getRandomValues` call filled from `bytes` (repeated as
 * needed), and restores the real one afterwards, whatever happens. Returns `fn`'s result.
 */
export async function withFixedRandom<T>(
  bytes: Uint8Array,
  fn: () => Promise<T>,
): Promise<T> {
  const original = Object.getOwnPropertyDescriptor(crypto, "getRandomValues");
  const fixed = <A extends ArrayBufferView | null>(array: A): A => {
    if (array !== null) {
      const view = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
      for (let i = 0; i < view.length; i++) view[i] = bytes[i % bytes.length];
    }
    return array;
  };
  Object.defineProperty(crypto, "getRandomValues", { value: fixed, configurable: true });
  try {
    return await fn();
  } finally {
    if (original) Object.defineProperty(crypto, "getRandomValues", original);
    else delete (crypto as { getRandomValues?: unknown }).getRandomValues;
  }
}
