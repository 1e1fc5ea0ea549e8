/** lib/utf8.ts: strict UTF-8, which keeps a byte-order mark as Python does. */

import assert from "node:assert/strict";
import { decodeUtf8 } from "../lib/utf8.ts";
import { pycaTest, runPython } from "../support/pyca.ts";

const bytes = (...b: number[]) => Uint8Array.from(b);

Deno.test("valid text decodes, one to four bytes a code point", () => {
  assert.equal(decodeUtf8(new Uint8Array()), "");
  assert.equal(decodeUtf8(bytes(0x68, 0x69)), "hi");
  assert.equal(decodeUtf8(bytes(0xc3, 0xa9)), "é");
  assert.equal(decodeUtf8(bytes(0xe2, 0x82, 0xac)), "€");
  assert.equal(decodeUtf8(bytes(0xf0, 0x9f, 0x9a, 0x80)), "🚀");
  const text = "héllo wörld € 🚀 \0 \u{10ffff} \ud7ff \ue000";
  assert.equal(decodeUtf8(new TextEncoder().encode(text)), text);
});

Deno.test("a leading byte-order mark is kept, as Python keeps it", () => {
  assert.equal(decodeUtf8(bytes(0xef, 0xbb, 0xbf)), "\ufeff");
  assert.equal(decodeUtf8(bytes(0xef, 0xbb, 0xbf, 0x68, 0x69)), "\ufeffhi");
  assert.equal(decodeUtf8(bytes(0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf)), "\ufeff\ufeff");
  assert.equal(decodeUtf8(bytes(0x61, 0xef, 0xbb, 0xbf)), "a\ufeff");
});

Deno.test("a decoder is not left in a state by one call: each call starts afresh", () => {
  assert.equal(decodeUtf8(bytes(0xef, 0xbb, 0xbf)), "\ufeff");
  assert.equal(decodeUtf8(bytes(0xef, 0xbb, 0xbf, 0x78)), "\ufeffx");
  assert.equal(decodeUtf8(bytes(0xe2, 0x82)), undefined);
  assert.equal(decodeUtf8(bytes(0xac)), undefined); // not the end of the previous call's €
});

Deno.test("invalid bytes are refused, not replaced", () => {
  const invalid: [string, number[]][] = [
    ["a byte never used", [0xff]],
    ["another", [0xfe, 0x61]],
    ["a lone continuation byte", [0x80]],
    ["a truncated 2-byte sequence", [0xc3]],
    ["a truncated 3-byte sequence", [0xe2, 0x82]],
    ["a truncated 4-byte sequence", [0xf0, 0x9f, 0x9a]],
    ["a truncated sequence before ASCII", [0xe2, 0x82, 0x61]],
    ["an overlong '/'", [0xc0, 0xaf]],
    ["an overlong NUL", [0xc0, 0x80]],
    ["an overlong 3-byte form", [0xe0, 0x80, 0xaf]],
    ["an overlong 4-byte form", [0xf0, 0x80, 0x80, 0xaf]],
    ["a high surrogate", [0xed, 0xa0, 0x80]],
    ["a low surrogate", [0xed, 0xbf, 0xbf]],
    ["a surrogate pair as CESU-8", [0xed, 0xa0, 0xbd, 0xed, 0xba, 0x80]],
    ["a code point past U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
    ["a 5-byte form", [0xf8, 0x88, 0x80, 0x80, 0x80]],
    ["valid text, then a bad byte", [0x68, 0x69, 0xff]],
  ];
  for (const [what, b] of invalid) assert.equal(decodeUtf8(bytes(...b)), undefined, what);
});

pycaTest("decodeUtf8 agrees with Python's bytes.decode('utf-8')", async () => {
  const inputs = [
    [0xef, 0xbb, 0xbf, 0x68, 0x69],
    [0xef, 0xbb, 0xbf],
    [0xc3, 0xa9, 0xf0, 0x9f, 0x9a, 0x80],
    [0xc0, 0xaf],
    [0xe0, 0x80, 0xaf],
    [0xed, 0xa0, 0x80],
    [0xf4, 0x90, 0x80, 0x80],
    [0xf0, 0x9f, 0x9a],
    [0x80],
    [0xff],
  ].map((b) => bytes(...b).toHex());
  const python = await runPython(
    `import json, sys
def decode(h):
    try:
        return bytes.fromhex(h).decode("utf-8")
    except UnicodeDecodeError:
        return None
sys.stdout.write(json.dumps([decode(h) for h in json.load(sys.stdin)]))`,
    JSON.stringify(inputs),
  );
  const ours = inputs.map((h) => decodeUtf8(Uint8Array.fromHex(h)) ?? null);
  assert.deepEqual(ours, JSON.parse(python));
});

Deno.test("a subarray decodes only its own bytes", () => {
  const buffer = bytes(0xff, 0x68, 0x69, 0xff);
  assert.equal(decodeUtf8(buffer.subarray(1, 3)), "hi");
});
