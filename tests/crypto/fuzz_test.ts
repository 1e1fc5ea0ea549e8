/**
 * Mutation fuzzing of everything in lib/crypto/ that parses peer- or file-supplied bytes (der.ts,
 * pem.ts, dh.ts's keys and parameters, fernet.ts's tokens). The property: every input either parses
 * or fails with that parser's own error type, never anything else (no TypeError, RangeError,
 * SyntaxError from inside, no hang). Seeded and counted, so a failure reproduces: CASES below says
 * how many inputs each target gets, over 100,000 in all.
 */
import assert from "node:assert/strict";
import { DerError, DerReader, Tag } from "../../lib/crypto/der.ts";
import {
  decodePeerPublicKey,
  DhKeyError,
  DhParamsError,
  encodePublicKeyDer,
  parseDhParamsPem,
} from "../../lib/crypto/dh.ts";
import { modPow } from "../../lib/crypto/modpow.ts";
import { encodeBitString, encodeInteger, encodeSequence } from "../../lib/crypto/der.ts";
import { pemDecode, pemEncode } from "../../lib/crypto/pem.ts";
import { Fernet, InvalidToken } from "../../lib/crypto/fernet.ts";
import { withFixedRandom } from "../../support/fixed_random.ts";
import { spkiDer } from "../../support/dh_reference.ts";
import { seeded } from "../../support/seeded.ts";

const SEED = 0x2545f491;

/** Inputs per target: DER and PEM parsers, then Fernet tokens. */
const CASES = {
  der: 30_000,
  keyDer: 15_000,
  keyText: 10_000,
  paramsDer: 10_000,
  paramsText: 5_000,
  fernetBytes: 20_000,
  fernetText: 10_000,
  fernetU8: 2_000,
} as const;

const INTERESTING = [0x00, 0x01, 0x02, 0x03, 0x06, 0x1f, 0x30, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xff];

function mutateBytes(rand: (n: number) => number, input: Uint8Array): Uint8Array {
  let b = Array.from(input);
  for (let m = 1 + rand(4); m > 0; m--) {
    const i = rand(b.length + 1);
    switch (rand(8)) {
      case 0:
        if (i < b.length) b[i] ^= 1 << rand(8);
        break;
      case 1:
        if (i < b.length) b[i] = rand(256);
        break;
      case 2:
        if (i < b.length) b[i] = INTERESTING[rand(INTERESTING.length)];
        break;
      case 3:
        b.splice(i, 0, INTERESTING[rand(INTERESTING.length)]);
        break;
      case 4:
        b.splice(i, 1 + rand(4));
        break;
      case 5:
        b = b.slice(0, i);
        break;
      case 6: {
        const j = rand(b.length + 1);
        b.splice(i, 0, ...b.slice(j, j + 1 + rand(16)));
        break;
      }
      default:
        // Aim at the first few bytes, where the tags and lengths of the outer elements live.
        if (b.length) b[rand(Math.min(b.length, 24))] = rand(256);
    }
  }
  // Never empty: the PEM-wrapping cases would fail in pemEncode, outside the code under test.
  return Uint8Array.from(b.length ? b : [rand(256)]);
}

const TEXT_ALPHABET = "ABCxyz019+/=-_ \t\r\n-----BEGIN END PUBLIC KEY DH PARAMETERS\u00e9\u0000";

function mutateText(rand: (n: number) => number, input: string): string {
  let s = input;
  for (let m = 1 + rand(3); m > 0; m--) {
    const i = rand(s.length + 1);
    const c = TEXT_ALPHABET[rand(TEXT_ALPHABET.length)];
    switch (rand(4)) {
      case 0:
        s = s.slice(0, i) + c + s.slice(i + 1);
        break;
      case 1:
        s = s.slice(0, i) + c + s.slice(i);
        break;
      case 2:
        s = s.slice(0, i) + s.slice(i + 1 + rand(8));
        break;
      default:
        s = s.slice(0, i);
    }
  }
  return s;
}

/** Walks any DER tree with the reader, as deep as it goes, reading each type it knows. */
function walk(r: DerReader, depth = 0): void {
  while (r.remaining) {
    const tag = r.peekTag();
    if (tag === Tag.SEQUENCE && depth < 16) walk(r.readSequence(), depth + 1);
    else if (tag === Tag.INTEGER) r.readInteger();
    else if (tag === Tag.OBJECT_IDENTIFIER) r.readOid();
    else if (tag === Tag.BIT_STRING) walk(new DerReader(r.readBitString()), depth + 1);
    else r.readElement();
  }
  r.end();
}

const show = (input: unknown) =>
  input instanceof Uint8Array ? input.toHex() : JSON.stringify(input);

interface Tally {
  ok: number;
  refused: number;
}

/**
 * Runs `n` cases; anything thrown that is not `expected` fails with the case to replay. Each
 * target gets its own generator, seeded from its name, so tests may run alone or in any order.
 */
async function fuzz<T>(
  name: string,
  n: number,
  seeds: T[],
  mutate: (rand: (n: number) => number, seed: T) => T,
  target: (input: T) => unknown,
  expected: (e: unknown) => boolean,
): Promise<Tally> {
  let nameHash = 0;
  for (const c of name) nameHash = Math.imul(nameHash ^ c.charCodeAt(0), 0x9e3779b1);
  const rand = seeded(SEED ^ nameHash);
  const tally = { ok: 0, refused: 0 };
  for (let i = 0; i < n; i++) {
    const input = mutate(rand, seeds[i % seeds.length]);
    try {
      await target(input);
      tally.ok++;
    } catch (e) {
      if (!expected(e)) {
        assert.fail(`${name} case ${i} (seed ${SEED}) threw ${e}: ${show(input)}`);
      }
      tally.refused++;
    }
  }
  assert.equal(tally.ok + tally.refused, n);
  return tally;
}

const paramsPem = await Deno.readTextFile(new URL("../../dhparam4096.pem", import.meta.url));
const group = parseDhParamsPem(paramsPem);
// Fixed inputs (no fresh randomness) keep every run identical, so a failure replays exactly.
const y = modPow(group.g, (1n << 383n) + 0x5eedn, group.p);
const pkcs3 = encodePublicKeyDer(group, y);
const x942 = spkiDer("1.2.840.10046.2.1", [
  encodeInteger(group.p),
  encodeInteger(group.g),
  encodeInteger((group.p - 1n) / 2n),
  encodeInteger(2n),
  encodeSequence(encodeBitString(Uint8Array.of(9, 9)), encodeInteger(3n)),
], encodeInteger(y));
const paramsDer = pemDecode(paramsPem, "DH PARAMETERS");
const derSeeds = [pkcs3, x942, paramsDer];
const keyPems = [pemEncode("PUBLIC KEY", pkcs3), pemEncode("PUBLIC KEY", x942)];

const isDer = (e: unknown) => e instanceof DerError;
const isKey = (e: unknown) => e instanceof DhKeyError;
const isParams = (e: unknown) => e instanceof DhParamsError;
const isToken = (e: unknown) => e instanceof InvalidToken && e.message === "invalid token";

Deno.test("fuzz: the DER reader fails only with DerError", async () => {
  const der = await fuzz(
    "der",
    CASES.der,
    derSeeds,
    mutateBytes,
    (b) => walk(new DerReader(b)),
    isDer,
  );
  assert.ok(der.ok > 0 && der.refused > 0);
});

Deno.test("fuzz: decodePeerPublicKey fails only with DhKeyError, on DER and on PEM text", async () => {
  const der = await fuzz(
    "key-der",
    CASES.keyDer,
    [pkcs3, x942],
    mutateBytes,
    (b) => decodePeerPublicKey(group, pemEncode("PUBLIC KEY", b)).y,
    isKey,
  );
  const text = await fuzz(
    "key-text",
    CASES.keyText,
    keyPems,
    mutateText,
    (s) => decodePeerPublicKey(group, s).y,
    isKey,
  );
  // Mutations inside y (or of whitespace) still give a valid key: both outcomes are exercised.
  assert.ok(der.ok > 0 && der.refused > 0 && text.ok > 0 && text.refused > 0);
});

Deno.test("fuzz: parseDhParamsPem fails only with DhParamsError", async () => {
  const der = await fuzz(
    "params-der",
    CASES.paramsDer,
    [paramsDer],
    mutateBytes,
    (b) => parseDhParamsPem(pemEncode("DH PARAMETERS", b)),
    isParams,
  );
  const text = await fuzz(
    "params-text",
    CASES.paramsText,
    [paramsPem],
    mutateText,
    parseDhParamsPem,
    isParams,
  );
  assert.ok(der.refused > 0 && text.refused > 0 && der.ok + text.ok > 0);
});

Deno.test("fuzz: Fernet.decrypt fails only with InvalidToken", async () => {
  const fernet = await Fernet.create(new Uint8Array(32).fill(7));
  const now = 1_700_000_000;
  // A fixed IV keeps the tokens, and so every case, the same from run to run.
  const tokens = await withFixedRandom(
    new Uint8Array(16).fill(3),
    () => Promise.all(["", "hi", "x".repeat(20)].map((m) => fernet.encrypt(m, { timestamp: now }))),
  );
  const raw = tokens.map((t) => Uint8Array.fromBase64(t, { alphabet: "base64url" }));
  const bytes = await fuzz(
    "fernet-bytes",
    CASES.fernetBytes,
    raw,
    mutateBytes,
    async (b) => {
      await fernet.decrypt(b.toBase64({ alphabet: "base64url" }), { now });
      // Accepted means unchanged: the mutation was a no-op (e.g. a cut past the end).
      assert.ok(raw.some((r) => r.toHex() === b.toHex()), `forged token accepted: ${b.toHex()}`);
    },
    isToken,
  );
  const text = await fuzz(
    "fernet-text",
    CASES.fernetText,
    tokens,
    mutateText,
    (t) => fernet.decrypt(t, { now }),
    isToken,
  );
  // Raw token bytes too: the Uint8Array form must be just as robust.
  const asBytes = await fuzz(
    "fernet-u8",
    CASES.fernetU8,
    raw,
    mutateBytes,
    (b) => fernet.decrypt(b, { now }),
    isToken,
  );
  assert.ok(bytes.refused > 0 && text.refused > 0 && asBytes.refused > 0);
});

Deno.test("fuzz: the budget is at least 100,000 inputs, PEM/DER and Fernet both", () => {
  const { fernetBytes, fernetText, fernetU8, ...parsers } = CASES;
  const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b);
  assert.ok(sum(CASES) >= 100_000);
  assert.ok(sum(parsers) >= 50_000 && fernetBytes + fernetText + fernetU8 >= 30_000);
});
