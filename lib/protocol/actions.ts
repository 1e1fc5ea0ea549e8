/**
 * The text transformations a responder performs, and the randomness two of them need. They
 * work on code points, not UTF-16 units, so that reversing or shuffling never splits a
 * surrogate pair into invalid text.
 *
 * @module
 */

/** The lab's five actions, in the order its usage text lists them. */
export const LAB_ACTIONS = ["uppercase", "lowercase", "title-case", "reverse", "shuffle"] as const;

/**
 * Every action the client offers and the responder answers: the lab's five, and `random` from
 * the course's later labs.
 */
export const ACTIONS = [...LAB_ACTIONS, "random"] as const;

/** One of {@linkcode ACTIONS}. */
export type Action = typeof ACTIONS[number];

/** True when `value` is one of {@linkcode ACTIONS}. */
export function isAction(value: string): value is Action {
  return (ACTIONS as readonly string[]).includes(value);
}

/** A source of uniform integers in `[0, n)`; tests pass a seeded one. */
export type RandomInt = (n: number) => number;

// Words are drawn from the CSPRNG in bulk: one getRandomValues call per character would make a
// 1 MiB shuffle take over a second of the responder's event loop.
const pool = new Uint32Array(16 * 1024);
let poolNext = pool.length;

function randomWord(): number {
  if (poolNext === pool.length) {
    crypto.getRandomValues(pool);
    poolNext = 0;
  }
  return pool[poolNext++];
}

/**
 * A uniform integer in `[0, n)` from the platform CSPRNG, without modulo bias (a word at or
 * above the largest multiple of `n` is drawn again).
 */
export const cryptoRandomInt: RandomInt = (n) => {
  const limit = Math.floor(0x1_0000_0000 / n) * n;
  let word;
  do word = randomWord(); while (word >= limit);
  return word % n;
};

/**
 * Applies `action` to `text`. `shuffle` puts the same code points in a random order; `random`
 * drops, keeps or doubles each code point with equal odds; `title-case` is Python's
 * `str.title()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { applyAction } from "./actions.ts";
 * assert.equal(applyAction("uppercase", "héllo"), "HÉLLO");
 * assert.equal(applyAction("reverse", "a🚀b"), "b🚀a");
 * assert.equal(applyAction("title-case", "they're bill's"), "They'Re Bill'S");
 * ```
 */
export function applyAction(
  action: Action,
  text: string,
  randomInt: RandomInt = cryptoRandomInt,
): string {
  switch (action) {
    case "uppercase":
      return text.toUpperCase();
    case "lowercase":
      return text.toLowerCase();
    case "reverse":
      return fromCodePoints(codePoints(text).reverse());
    case "shuffle": {
      const cps = codePoints(text);
      for (let i = cps.length - 1; i > 0; i--) { // Fisher–Yates
        const j = randomInt(i + 1);
        const held = cps[i];
        cps[i] = cps[j];
        cps[j] = held;
      }
      return fromCodePoints(cps);
    }
    case "random": {
      const cps = codePoints(text);
      const out = new Uint32Array(cps.length * 2);
      let n = 0;
      for (const cp of cps) {
        for (let copies = randomInt(3); copies > 0; copies--) out[n++] = cp;
      }
      return fromCodePoints(out.subarray(0, n));
    }
    case "title-case":
      return titleCase(text);
  }
}

// Code points live in typed arrays while they are moved: a 1 MiB message then takes about
// 0.1 s, where arrays of strings took seconds.
function codePoints(text: string): Uint32Array {
  const out = new Uint32Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const cp = text.codePointAt(i)!;
    out[n++] = cp;
    if (cp > 0xffff) i++; // the low surrogate was part of this code point
  }
  return out.subarray(0, n);
}

// ignoreBOM: a decoder strips a U+FEFF it meets first, and an answer must keep every one
// wherever the action put it (at the start of a reversed "hello\ufeff", say).
const utf16 = new TextDecoder("utf-16le", { ignoreBOM: true });

function fromCodePoints(cps: Uint32Array): string {
  const units = new Uint16Array(cps.length * 2);
  let n = 0;
  for (const cp of cps) {
    if (cp > 0xffff) {
      units[n++] = 0xd800 + ((cp - 0x10000) >> 10);
      units[n++] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
    } else {
      units[n++] = cp;
    }
  }
  return utf16.decode(units.subarray(0, n));
}

// Python's str.title(): a character after a cased one is lowercased, any other is titlecased.
// JavaScript has no titlecase mapping; for almost every character it is the uppercase one with
// any further characters lowercased ("ß" -> "Ss", "ﬃ" -> "Ffi"). TITLE_EXCEPTIONS holds the
// characters where Unicode's titlecase mapping says otherwise (UnicodeData.txt and
// SpecialCasing.txt: the Lt digraphs, Greek with ypogegrammeni, Georgian Mkhedruli, "ŉ").
const CASED = /\p{Cased}/u;
const CASE_IGNORABLE = /\p{Case_Ignorable}/u;
const TITLE_EXCEPTIONS = new Map<number, string>([
  [0x149, "\u02bcN"],
  [0x1fb2, "\u1fba\u0345"],
  [0x1fb4, "\u0386\u0345"],
  [0x1fb7, "\u0391\u0342\u0345"],
  [0x1fc2, "\u1fca\u0345"],
  [0x1fc4, "\u0389\u0345"],
  [0x1fc7, "\u0397\u0342\u0345"],
  [0x1ff2, "\u1ffa\u0345"],
  [0x1ff4, "\u038f\u0345"],
  [0x1ff7, "\u03a9\u0342\u0345"],
]);
for (const first of [0x1c4, 0x1c7, 0x1ca, 0x1f1]) { // Ǆǅǆ -> ǅ, and the other three digraphs
  for (let cp = first; cp < first + 3; cp++) {
    TITLE_EXCEPTIONS.set(cp, String.fromCodePoint(first + 1));
  }
}
for (let cp = 0x10d0; cp <= 0x10ff; cp++) { // Mkhedruli has an uppercase, but titlecases as itself
  if (cp !== 0x10fb && cp !== 0x10fc) TITLE_EXCEPTIONS.set(cp, String.fromCodePoint(cp));
}
for (let cp = 0x1f80; cp <= 0x1faf; cp++) { // ᾀ -> ᾈ: the prosgegrammeni form
  TITLE_EXCEPTIONS.set(cp, String.fromCodePoint(cp | 0x8));
}
for (const [small, title] of [[0x1fb3, 0x1fbc], [0x1fc3, 0x1fcc], [0x1ff3, 0x1ffc]]) {
  TITLE_EXCEPTIONS.set(small, String.fromCodePoint(title));
  TITLE_EXCEPTIONS.set(title, String.fromCodePoint(title));
}

function titleOf(c: string): string {
  const exception = TITLE_EXCEPTIONS.get(c.codePointAt(0)!);
  if (exception !== undefined) return exception;
  const [first, ...rest] = c.toUpperCase();
  return first + rest.join("").toLowerCase();
}

function titleCase(text: string): string {
  const chars = Array.from(text);
  let out = "";
  let previousCased = false;
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (!previousCased) out += titleOf(c);
    else if (c === "\u03a3") out += isFinalSigma(chars, i) ? "\u03c2" : "\u03c3";
    else out += c.toLowerCase();
    previousCased = CASED.test(c);
  }
  return out;
}

// Unicode's Final_Sigma condition (SpecialCasing.txt): the only context-dependent lowercase
// mapping, so a character-by-character toLowerCase needs it restated.
function isFinalSigma(chars: string[], at: number): boolean {
  const casedAround = (step: number) => {
    for (let j = at + step; j >= 0 && j < chars.length; j += step) {
      if (!CASE_IGNORABLE.test(chars[j])) return CASED.test(chars[j]);
    }
    return false;
  };
  return casedAround(-1) && !casedAround(1);
}
