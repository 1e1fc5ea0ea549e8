/**
 * lib/crypto/der.ts: the DER encoder round-trips, and the strict reader refuses every
 * malformed, non-minimal, truncated or oversized input with DerError.
 */

import assert from "node:assert/strict";
import {
  DerError,
  DerReader,
  encodeBitString,
  encodeInteger,
  encodeOid,
  encodeSequence,
  Tag,
} from "../../lib/crypto/der.ts";
import { tlv } from "../../support/der.ts";

const hex = (s: string) => Uint8Array.fromHex(s.replaceAll(" ", ""));
const read = <T>(bytes: Uint8Array, f: (r: DerReader) => T): T => {
  const r = new DerReader(bytes);
  const value = f(r);
  r.end();
  return value;
};
const rejects = (bytes: Uint8Array, f: (r: DerReader) => unknown, message: RegExp) =>
  assert.throws(() => read(bytes, f), (e) => e instanceof DerError && message.test(e.message));

Deno.test("INTEGER encodes as minimal two's complement and round-trips", () => {
  const cases: [bigint, string][] = [
    [0n, "020100"],
    [1n, "020101"],
    [127n, "02017f"],
    [128n, "02020080"],
    [255n, "020200ff"],
    [256n, "02020100"],
    [-1n, "0201ff"],
    [-128n, "020180"],
    [-129n, "0202ff7f"],
    [-256n, "0202ff00"],
    [1n << 64n, "0209010000000000000000"],
  ];
  for (const [value, der] of cases) {
    assert.equal(encodeInteger(value).toHex(), der, `encode ${value}`);
    assert.equal(read(hex(der), (r) => r.readInteger()), value, `decode ${der}`);
  }
  for (let bits = 1; bits < 4200; bits += 97) {
    for (const v of [(1n << BigInt(bits)) - 1n, 1n << BigInt(bits), -(1n << BigInt(bits))]) {
      assert.equal(read(encodeInteger(v), (r) => r.readInteger()), v);
    }
  }
});

Deno.test("long-form lengths round-trip at every boundary", () => {
  for (const n of [0, 1, 127, 128, 255, 256, 65535, 65536]) {
    const der = tlv(Tag.SEQUENCE, new Uint8Array(n));
    const header = n < 128 ? 2 : n < 256 ? 3 : n < 65536 ? 4 : 5;
    assert.equal(der.length, header + n);
    assert.equal(read(der, (r) => r.read(Tag.SEQUENCE)).length, n);
  }
});

Deno.test("OBJECT IDENTIFIER round-trips, including both DH OIDs", () => {
  assert.equal(encodeOid("1.2.840.113549.1.3.1").toHex(), "06092a864886f70d010301");
  assert.equal(encodeOid("1.2.840.10046.2.1").toHex(), "06072a8648ce3e0201");
  for (const oid of ["1.2.840.113549.1.3.1", "1.2.840.10046.2.1", "2.999.1", "0.39", "2.5.4.3"]) {
    assert.equal(read(encodeOid(oid), (r) => r.readOid()), oid);
  }
  for (const bad of ["", "1", "3.1", "1.40", "1.2.", "1.02", "1.2.x", "1.2.99999999999999999"]) {
    assert.throws(() => encodeOid(bad), DerError, bad);
  }
});

Deno.test("SEQUENCE and BIT STRING round-trip", () => {
  const der = encodeSequence(encodeInteger(5n), encodeBitString(Uint8Array.of(1, 2)));
  assert.equal(der.toHex(), "3008" + "020105" + "0303000102");
  const [n, bits] = read(der, (r) => {
    const seq = r.readSequence();
    const v = [seq.readPositiveInteger(), seq.readBitString()] as const;
    seq.end();
    return v;
  });
  assert.equal(n, 5n);
  assert.deepEqual(bits, Uint8Array.of(1, 2));
});

Deno.test("rejects truncated input at every length", () => {
  const der = encodeSequence(encodeOid("1.2.840.10046.2.1"), encodeInteger(1n << 300n));
  for (let n = 0; n < der.length; n++) {
    assert.throws(() => {
      const seq = new DerReader(der.subarray(0, n)).readSequence();
      seq.readOid();
      seq.readInteger();
      seq.end();
    }, DerError);
  }
});

Deno.test("rejects trailing bytes, at top level and inside a SEQUENCE", () => {
  rejects(hex("020101 00"), (r) => r.readInteger(), /trailing/);
  rejects(hex("3004 020101 00"), (r) => {
    const seq = r.readSequence();
    seq.readInteger();
    seq.end();
  }, /trailing/);
});

Deno.test("rejects wrong and multi-byte tags", () => {
  rejects(hex("030101"), (r) => r.readInteger(), /unexpected tag 0x03, expected 0x02/);
  rejects(hex("310100"), (r) => r.readSequence(), /unexpected tag/);
  rejects(hex("1f0200"), (r) => r.readElement(), /multi-byte/);
  rejects(hex(""), (r) => r.readInteger(), /truncated/);
});

Deno.test("rejects non-minimal, indefinite and oversized lengths", () => {
  rejects(hex("02 8101 05"), (r) => r.readInteger(), /non-minimal length/);
  rejects(hex("02 820001 05"), (r) => r.readInteger(), /non-minimal length/);
  rejects(hex("30 80 0000"), (r) => r.readSequence(), /indefinite/);
  rejects(hex("30 850000000001 00"), (r) => r.readSequence(), /too long/);
  rejects(hex("30 82 01"), (r) => r.readSequence(), /truncated/);
});

Deno.test("a huge length field is checked against the bytes left before anything is read", () => {
  for (const header of ["30 84ffffffff", "30 84 01000000", "02 83ffffff", "03 82ffff"]) {
    const r = new DerReader(hex(header + "00"));
    assert.throws(
      () => r.readElement(),
      (e) => e instanceof DerError && e.message === "truncated: contents",
    );
    assert.equal(r.remaining, hex(header).length + 1); // nothing consumed
  }
});

Deno.test("rejects non-minimal and empty INTEGERs", () => {
  rejects(hex("02020001"), (r) => r.readInteger(), /non-minimal INTEGER/);
  rejects(hex("0202ff80"), (r) => r.readInteger(), /non-minimal INTEGER/);
  rejects(hex("0200"), (r) => r.readInteger(), /empty INTEGER/);
  assert.equal(read(hex("02020080"), (r) => r.readInteger()), 128n);
  assert.equal(read(hex("0202ff7f"), (r) => r.readInteger()), -129n);
});

Deno.test("rejects zero and negative INTEGERs where a positive one is required", () => {
  rejects(hex("020100"), (r) => r.readPositiveInteger(), /positive/);
  rejects(hex("0201ff"), (r) => r.readPositiveInteger(), /positive/);
  rejects(hex("020180"), (r) => r.readPositiveInteger(), /positive/);
});

Deno.test("rejects BIT STRINGs with unused bits, and empty ones", () => {
  rejects(hex("03020180"), (r) => r.readBitString(), /unused bits/);
  rejects(hex("030107"), (r) => r.readBitString(), /unused bits/);
  rejects(hex("0300"), (r) => r.readBitString(), /empty/);
  assert.deepEqual(read(hex("030100"), (r) => r.readBitString()), new Uint8Array());
});

Deno.test("rejects malformed OBJECT IDENTIFIERs", () => {
  rejects(hex("0600"), (r) => r.readOid(), /empty/);
  rejects(hex("06022a86"), (r) => r.readOid(), /truncated/);
  rejects(hex("06032a8001"), (r) => r.readOid(), /non-minimal/);
  rejects(hex("060a2affffffffffffffff7f"), (r) => r.readOid(), /too large/);
});

Deno.test("a failed read leaves the reader where it was", () => {
  const r = new DerReader(hex("020105"));
  assert.throws(() => r.readSequence(), DerError);
  assert.equal(r.readInteger(), 5n);
  r.end();
});
