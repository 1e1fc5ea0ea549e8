/**
 * lib/crypto/modpow.ts: modPow and ModPowPrecomputation against the textbook square-and-multiply
 * (support/dh_reference.ts), path by path.
 */

import assert from "node:assert/strict";
import { modPow, ModPowPrecomputation } from "../../lib/crypto/modpow.ts";
import { parseDhParamsPem } from "../../lib/crypto/dh.ts";
import { referencePow } from "../../support/dh_reference.ts";

const { p, g } = parseDhParamsPem(
  await Deno.readTextFile(new URL("../../dhparam4096.pem", import.meta.url)),
);

/** Seeded xorshift32 giving `bits`-bit BigInts, so that failures reproduce. */
function rng(seed: number) {
  let s = seed;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  return (bits: number) => {
    let v = 0n;
    for (let i = 0; i < bits; i += 32) v = (v << 32n) | BigInt(next());
    return BigInt.asUintN(bits, v);
  };
}

/** An exponent of exactly `bits` bits. */
const exact = (random: (bits: number) => bigint, bits: number) =>
  random(bits) | (1n << BigInt(bits - 1));

Deno.test("modPow matches the textbook on random small arguments", () => {
  const random = rng(0x5eed);
  for (let i = 0; i < 300; i++) {
    const m = random(1 + (i % 130)) + 1n; // odd and even moduli, 1..130 bits
    const b = random(140) - (1n << 139n); // negative bases too
    const e = random(i % 200);
    assert.equal(modPow(b, e, m), referencePow(b, e, m), `${b}^${e} mod ${m}`);
    assert.equal(modPow(2n, e, m), referencePow(2n, e, m), `2^${e} mod ${m}`);
  }
  assert.equal(modPow(4n, 13n, 497n), 445n);
  assert.throws(() => modPow(2n, -1n, 7n), RangeError);
  assert.throws(() => modPow(2n, 1n, 0n), RangeError);
});

Deno.test("modPow is right on arguments chosen to take each of its paths", () => {
  const random = rng(0xbeef);
  const mersenne = (1n << 1279n) - 1n;
  const cases: [bigint, bigint, bigint, string][] = [
    [5n, 0n, 7n, "trivial"],
    [5n, 3n, 1n, "trivial"],
    [7n, 9n, 7n, "trivial"], // base 0 after reduction
    [-6n, 9n, 7n, "trivial"], // base 1 after reduction
    [p - 2n, exact(random, 384), p, "window"],
    [2n, exact(random, 384), p, "base2"],
    [p + 2n, exact(random, 384), p, "base2"], // 2 after reduction
    [p - 2n, exact(random, 1024), p, "montgomery-window"],
    [2n, exact(random, 4096), p, "montgomery-base2"],
    [random(1279), exact(random, 2000), mersenne, "montgomery-window"],
    // Montgomery needs an odd modulus: an even one stays with `%`, whatever the exponent.
    [random(1100), exact(random, 1100), p - 1n, "window"],
    [2n, exact(random, 1100), p - 1n, "base2"],
    [3n, exact(random, 1023), p, "window"],
  ];
  for (const [b, e, m, path] of cases) {
    assert.equal(modPow(b, e, m), referencePow(b, e, m), `result of ${path} case`);
  }
});

Deno.test("modPow keeps no state: a thousand calls with one modulus change nothing", () => {
  const random = rng(0x600d);
  const x = exact(random, 384);
  const y = random(4096) % p;
  const expected = referencePow(y, x, p);
  for (let i = 0; i < 1000; i++) {
    if (i % 100 === 0) assert.equal(modPow(y, x, p), expected);
    modPow(g, exact(random, 64), p);
  }
  assert.equal(modPow(y, x, p), expected);
});

Deno.test("ModPowPrecomputation matches the textbook on every path, and counts them", () => {
  const random = rng(0xc0de);
  const powers = new ModPowPrecomputation(p, g);
  for (let i = 0; i < 3; i++) {
    for (const bits of [384, 4096]) {
      const e = exact(random, bits);
      assert.equal(powers.pow(g, e), referencePow(g, e, p), `comb ${bits}`);
      const y = random(4096) % p;
      assert.equal(powers.pow(y, e), referencePow(y, e, p), `Montgomery ${bits}`);
    }
  }
  // Exponents shorter than a table's size use the same table.
  assert.equal(powers.pow(g, 12345n), referencePow(g, 12345n, p));
  assert.equal(powers.pow(g, 0n), 1n);
  assert.equal(powers.pow(1n, 99n), 1n);
  assert.deepEqual(powers.stats, {
    trivial: 2,
    window: 0,
    base2: 0,
    "montgomery-window": 6,
    "montgomery-base2": 0,
    comb: 7,
    tablesBuilt: 3, // 384 bits, 4096 bits, and 14 bits for 12345
  });
  assert.throws(() => powers.pow(g, -1n), RangeError);
});

Deno.test("ModPowPrecomputation: base 2 that is not the fixed base takes the shift path", () => {
  const random = rng(0xf00d);
  const powers = new ModPowPrecomputation(p, 5n);
  const e = exact(random, 384);
  assert.equal(powers.pow(2n, e), referencePow(2n, e, p));
  assert.equal(powers.pow(5n, e), referencePow(5n, e, p));
  assert.equal(powers.pow(p + 5n, e), referencePow(5n, e, p)); // the fixed base, unreduced
  assert.equal(powers.stats["montgomery-base2"], 1);
  assert.equal(powers.stats.comb, 2);
  assert.equal(powers.stats.tablesBuilt, 1);
});

Deno.test("ModPowPrecomputation keeps tables for two exponent sizes, none for peers' bases", () => {
  const random = rng(0xabba);
  const m = (1n << 521n) - 1n;
  const powers = new ModPowPrecomputation(m, 3n);
  const sizes = [64, 128, 64, 256, 64, 128];
  for (const bits of sizes) {
    const e = exact(random, bits);
    assert.equal(powers.pow(3n, e), referencePow(3n, e, m));
  }
  // 64 built, 128 built, 64 kept, 256 built (evicts 128), 64 kept, 128 built again.
  assert.equal(powers.stats.tablesBuilt, 4);
  for (let i = 0; i < 20; i++) {
    const peer = random(521) % m;
    const e = exact(random, 64 + i);
    assert.equal(powers.pow(peer, e), referencePow(peer, e, m));
  }
  assert.equal(powers.stats.tablesBuilt, 4);
  assert.equal(powers.stats["montgomery-window"], 20);
});

Deno.test("ModPowPrecomputation instances share nothing", () => {
  const a = new ModPowPrecomputation(p, g);
  const b = new ModPowPrecomputation(p, g);
  a.pow(g, 1n << 383n);
  assert.equal(a.stats.comb, 1);
  assert.equal(b.stats.comb, 0);
  assert.equal(b.stats.tablesBuilt, 0);
});

Deno.test("ModPowPrecomputation needs an odd modulus of at least 3", () => {
  for (const m of [-7n, 0n, 1n, 2n, p - 1n]) {
    assert.throws(() => new ModPowPrecomputation(m, 2n), RangeError, String(m));
  }
  assert.equal(new ModPowPrecomputation(3n, 2n).pow(2n, 3n), 2n);
});
