/**
 * A small strict DER codec (ITU-T X.690 §10): only the universal types that a DH
 * SubjectPublicKeyInfo and a PKCS#3 DHParameter use (INTEGER, BIT STRING, OBJECT IDENTIFIER,
 * SEQUENCE), single-byte tags, definite minimal lengths.
 *
 * Strictness is the point: DER gives every value exactly one encoding, so anything BER would
 * tolerate (indefinite or padded lengths, padded INTEGERs, unused bits) is refused, which keeps
 * "same key" and "same bytes" the same question. Every length is checked against the bytes that
 * remain before it is used, so the work done is bounded by the input size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DerError, DerReader, encodeInteger, encodeSequence } from "./der.ts";
 * const der = encodeSequence(encodeInteger(65537n));
 * assert.equal(der.toHex(), "3005020301" + "0001");
 * const outer = new DerReader(der);
 * const seq = outer.readSequence();
 * outer.end();
 * assert.equal(seq.readPositiveInteger(), 65537n);
 * seq.end();
 * // The same value with a padded length (BER allows it, DER does not).
 * const padded = Uint8Array.fromHex("308105020301" + "0001");
 * assert.throws(() => new DerReader(padded).readSequence(), DerError);
 * ```
 * @module
 */

/** Every malformed-DER failure. The message is short and never echoes the input's contents. */
export class DerError extends Error {
  override name = "DerError";
}

/** The universal tags this codec understands (X.690 §8.1.2; SEQUENCE has the constructed bit). */
export const Tag = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OBJECT_IDENTIFIER: 0x06,
  SEQUENCE: 0x30,
} as const;

/** One decoded TLV: its tag byte and a view (not a copy) of its contents. */
export interface DerElement {
  /** The tag byte, e.g. {@linkcode Tag.INTEGER}. */
  readonly tag: number;
  /** The contents octets, a view into the reader's input. */
  readonly contents: Uint8Array;
}

const hex2 = (n: number) => "0x" + n.toString(16).padStart(2, "0");

/**
 * Reads DER elements one after another from a byte view. A failed read throws DerError and
 * leaves the position where it was.
 */
export class DerReader {
  #bytes: Uint8Array;
  #pos = 0;

  /** Reads from `bytes`, kept by reference, not copied. */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** Bytes not consumed yet. */
  get remaining(): number {
    return this.#bytes.length - this.#pos;
  }

  /** The next tag byte, or undefined at the end; consumes nothing. */
  peekTag(): number | undefined {
    return this.#pos < this.#bytes.length ? this.#bytes[this.#pos] : undefined;
  }

  /** Reads the next element, whatever its (single-byte) tag. */
  readElement(): DerElement {
    const b = this.#bytes;
    let pos = this.#pos;
    if (pos >= b.length) throw new DerError("truncated: missing tag");
    const tag = b[pos++];
    // X.690 §8.1.2.4: low bits 11111 announce a multi-byte tag; nothing we read uses one.
    if ((tag & 0x1f) === 0x1f) throw new DerError("multi-byte tags are not supported");
    if (pos >= b.length) throw new DerError("truncated: missing length");
    let length = b[pos++];
    // X.690 §10.1: DER uses the definite form, in the minimum number of octets.
    if (length === 0x80) throw new DerError("indefinite length is not DER");
    if (length > 0x80) {
      const n = length & 0x7f;
      // Four length octets already describe 4 GiB; more cannot fit any input we accept.
      if (n > 4) throw new DerError("length field too long");
      if (n > b.length - pos) throw new DerError("truncated: length field");
      if (b[pos] === 0) throw new DerError("non-minimal length");
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + b[pos++];
      if (length < 0x80) throw new DerError("non-minimal length");
    }
    if (length > b.length - pos) throw new DerError("truncated: contents");
    this.#pos = pos + length;
    return { tag, contents: b.subarray(pos, pos + length) };
  }

  /** Reads the next element, which must have tag `tag`; returns its contents. */
  read(tag: number): Uint8Array {
    const got = this.peekTag();
    if (got === undefined) throw new DerError(`truncated: expected tag ${hex2(tag)}`);
    if (got !== tag) throw new DerError(`unexpected tag ${hex2(got)}, expected ${hex2(tag)}`);
    return this.readElement().contents;
  }

  /** Reads a SEQUENCE and returns a reader over its contents. */
  readSequence(): DerReader {
    return new DerReader(this.read(Tag.SEQUENCE));
  }

  /** Reads an INTEGER of any sign (minimal two's complement, X.690 §8.3.2). */
  readInteger(): bigint {
    const c = this.read(Tag.INTEGER);
    if (c.length === 0) throw new DerError("empty INTEGER");
    // §8.3.2: the first nine bits must not be all zeros or all ones.
    if (c.length > 1 && ((c[0] === 0x00 && c[1] < 0x80) || (c[0] === 0xff && c[1] >= 0x80))) {
      throw new DerError("non-minimal INTEGER");
    }
    const magnitude = BigInt("0x" + c.toHex());
    return c[0] < 0x80 ? magnitude : magnitude - (1n << BigInt(c.length * 8));
  }

  /** Reads an INTEGER that must be > 0 (moduli, generators, counters). */
  readPositiveInteger(): bigint {
    const value = this.readInteger();
    if (value <= 0n) throw new DerError("INTEGER must be positive");
    return value;
  }

  /** Reads an OBJECT IDENTIFIER as dotted decimal (X.690 §8.19). */
  readOid(): string {
    const c = this.read(Tag.OBJECT_IDENTIFIER);
    if (c.length === 0) throw new DerError("empty OBJECT IDENTIFIER");
    if (c[c.length - 1] & 0x80) throw new DerError("truncated OBJECT IDENTIFIER");
    const arcs: number[] = [];
    let value = 0;
    let start = true;
    for (const byte of c) {
      // §8.19.2: a subidentifier's first octet is never 0x80 (that would be a padding digit).
      if (start && byte === 0x80) throw new DerError("non-minimal OBJECT IDENTIFIER");
      if (value > (Number.MAX_SAFE_INTEGER - 0x7f) / 0x80) {
        throw new DerError("OBJECT IDENTIFIER arc too large");
      }
      value = value * 0x80 + (byte & 0x7f);
      start = (byte & 0x80) === 0;
      if (start) {
        if (arcs.length === 0) {
          // §8.19.4: the first subidentifier packs the first two arcs as 40 * X + Y.
          const first = value < 80 ? Math.floor(value / 40) : 2;
          arcs.push(first, value - 40 * first);
        } else {
          arcs.push(value);
        }
        value = 0;
      }
    }
    return arcs.join(".");
  }

  /** Reads a BIT STRING of whole octets (0 unused bits) and returns those octets. */
  readBitString(): Uint8Array {
    const c = this.read(Tag.BIT_STRING);
    if (c.length === 0) throw new DerError("empty BIT STRING");
    // Keys and signatures are whole octets; a non-zero count only hides a different value.
    if (c[0] !== 0) throw new DerError("BIT STRING has unused bits");
    return c.subarray(1);
  }

  /** Throws DerError unless every byte has been read: DER leaves no room for trailing data. */
  end(): void {
    if (this.#pos !== this.#bytes.length) throw new DerError("trailing bytes");
  }
}

function encodeLength(length: number): Uint8Array<ArrayBuffer> {
  if (length < 0x80) return Uint8Array.of(length);
  const octets: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) octets.unshift(n % 256);
  return Uint8Array.of(0x80 | octets.length, ...octets);
}

function concat(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Encodes one element: tag, minimal definite length, contents. */
function encodeTlv(tag: number, contents: Uint8Array): Uint8Array<ArrayBuffer> {
  return concat([Uint8Array.of(tag), encodeLength(contents.length), contents]);
}

/** Encodes a SEQUENCE of already-encoded elements. */
export function encodeSequence(...elements: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return encodeTlv(Tag.SEQUENCE, concat(elements));
}

/**
 * Encodes an INTEGER in minimal two's complement: a positive value whose top bit is set gets
 * a leading 0x00.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeInteger } from "./der.ts";
 * assert.equal(encodeInteger(127n).toHex(), "02017f");
 * assert.equal(encodeInteger(128n).toHex(), "02020080");
 * assert.equal(encodeInteger(-129n).toHex(), "0202ff7f");
 * ```
 */
export function encodeInteger(value: bigint): Uint8Array<ArrayBuffer> {
  // For v < 0 the octets are the complement of those of ~v = -v - 1 (which is >= 0).
  const negative = value < 0n;
  let hex = (negative ? -value - 1n : value).toString(16);
  if (hex.length % 2) hex = "0" + hex;
  if (parseInt(hex[0], 16) >= 8) hex = "00" + hex;
  const octets = Uint8Array.fromHex(hex);
  if (negative) { for (let i = 0; i < octets.length; i++) octets[i] ^= 0xff; }
  return encodeTlv(Tag.INTEGER, octets);
}

/** Encodes an OBJECT IDENTIFIER given in dotted decimal; DerError if it is not one. */
export function encodeOid(oid: string): Uint8Array<ArrayBuffer> {
  if (!/^[0-2](\.(0|[1-9]\d*))+$/.test(oid)) throw new DerError("malformed OBJECT IDENTIFIER");
  const arcs = oid.split(".").map(Number);
  if (arcs.some((a) => !Number.isSafeInteger(a)) || (arcs[0] < 2 && arcs[1] >= 40)) {
    throw new DerError("malformed OBJECT IDENTIFIER");
  }
  const octets: number[] = [];
  for (const arc of [arcs[0] * 40 + arcs[1], ...arcs.slice(2)]) {
    const digits = [arc % 0x80];
    for (let n = Math.floor(arc / 0x80); n > 0; n = Math.floor(n / 0x80)) {
      digits.unshift(0x80 | (n % 0x80));
    }
    octets.push(...digits);
  }
  return encodeTlv(Tag.OBJECT_IDENTIFIER, Uint8Array.from(octets));
}

/** Encodes whole octets as a BIT STRING (0 unused bits). */
export function encodeBitString(octets: Uint8Array): Uint8Array<ArrayBuffer> {
  return encodeTlv(Tag.BIT_STRING, concat([Uint8Array.of(0), octets]));
}
