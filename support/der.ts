/**
 * DER built by hand, for tests that need elements the codec in lib/crypto/der.ts has no
 * encoder for (a NULL, an OCTET STRING, an INTEGER with raw contents): hostile and foreign
 * structures, not ones the product writes.
 *
 * @module
 */

/** One element: `tag`, the minimal definite length, then `contents` as given. */
export function tlv(tag: number, contents: Uint8Array): Uint8Array<ArrayBuffer> {
  const n = contents.length;
  const length = n < 0x80 ? [n] : [
    0x80 | Math.ceil(n.toString(16).length / 2),
    ...Uint8Array.fromHex(
      n.toString(16).padStart(Math.ceil(n.toString(16).length / 2) * 2, "0"),
    ),
  ];
  return Uint8Array.of(tag, ...length, ...contents);
}
