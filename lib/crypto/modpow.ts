/**
 * Modular exponentiation over BigInt, for finite-field Diffie-Hellman.
 *
 * {@linkcode modPow} is a plain function whose algorithm depends on its arguments only, chosen
 * for a process that makes one or two exponentiations (the CLI: one keygen, one shared
 * secret). {@linkcode ModPowPrecomputation} is for a process that makes thousands with one
 * modulus and one fixed base (a responder): it holds a Montgomery context and tables of the
 * base's powers, which cost time to build and pay off only over many calls. There is no state
 * at module level.
 *
 * Neither is constant time: V8's BigInt arithmetic is not, and neither are sliding windows.
 * That is the accepted cost of a pure-TypeScript client whose secret exponent is fresh per run.
 *
 * @module
 */

/**
 * The algorithm an exponentiation took. `window` is a sliding window over `%` (HAC 14.85),
 * `base2` the shift-based path for base 2, `montgomery-*` the same over Montgomery
 * multiplication (HAC 14.36), `comb` a {@linkcode ModPowPrecomputation}'s fixed-base comb
 * (HAC 14.117), and `trivial` a result known without multiplying (exponent 0, base 0 or 1,
 * modulus 1).
 */
export type ModPowPath =
  | "trivial"
  | "window"
  | "base2"
  | "montgomery-window"
  | "montgomery-base2"
  | "comb";

/** Multiplication in some representation of Z/m: plain residues or Montgomery form. */
interface ModArith {
  readonly m: bigint;
  into(x: bigint): bigint;
  out(x: bigint): bigint;
  mul(a: bigint, b: bigint): bigint;
}

function bitLength(n: bigint): number {
  if (n <= 0n) return 0;
  const hex = n.toString(16);
  return hex.length * 4 - (Math.clz32(parseInt(hex[0], 16)) - 28);
}

class PlainArith implements ModArith {
  constructor(readonly m: bigint) {}
  into(x: bigint): bigint {
    return x;
  }
  out(x: bigint): bigint {
    return x;
  }
  mul(a: bigint, b: bigint): bigint {
    return (a * b) % this.m;
  }
}

/** Montgomery multiplication with R = 2^k, k a whole number of 64-bit BigInt digits. */
class MontgomeryArith implements ModArith {
  readonly #k: number;
  readonly #kb: bigint;
  readonly #negInverse: bigint;

  constructor(readonly m: bigint) {
    const k = Math.ceil(bitLength(m) / 64) * 64;
    // Newton's iteration for m^-1 mod 2^k: m*m = 1 mod 8 for odd m, each step doubles the bits.
    let inverse = m;
    for (let bits = 3; bits < k; bits *= 2) {
      inverse = BigInt.asUintN(k, inverse * (2n - m * inverse));
    }
    this.#k = k;
    this.#kb = BigInt(k);
    this.#negInverse = BigInt.asUintN(k, -inverse);
  }
  into(x: bigint): bigint {
    return (x << this.#kb) % this.m;
  }
  out(t: bigint): bigint {
    const k = this.#k;
    const u = (t + BigInt.asUintN(k, BigInt.asUintN(k, t) * this.#negInverse) * this.m) >> this.#kb;
    return u >= this.m ? u - this.m : u;
  }
  mul(a: bigint, b: bigint): bigint {
    return this.out(a * b);
  }
}

/**
 * Below this exponent size a one-shot modPow reduces with `%`, from it on with Montgomery.
 * Measured (bench/dh_micro.ts): once a process is warm, a REDC costs 15-25% less than `%` of
 * an 8192-bit product. But it allocates about three times the bytes, and in a fresh process
 * the first megabytes of BigInt garbage land on never-touched pages whose first-touch faults
 * dominate: a one-shot 384-bit exponentiation then takes about 1.8 times as long with
 * Montgomery. A 4096-bit one is about 10% faster with it even cold.
 */
const MONTGOMERY_MIN_EXPONENT_BITS = 1024;

/** OpenSSL's BN_window_bits_for_exponent_size: the window that minimises multiplications. */
function windowBits(exponentBits: number): number {
  if (exponentBits > 671) return 6;
  if (exponentBits > 239) return 5;
  if (exponentBits > 79) return 4;
  return exponentBits > 23 ? 3 : 1;
}

/** Left-to-right sliding-window exponentiation (HAC 14.85); `base` already in [0, m). */
function slidingWindow(f: ModArith, base: bigint, bits: string): bigint {
  const w = windowBits(bits.length);
  const b = f.into(base);
  const b2 = f.mul(b, b);
  const oddPowers = [b]; // b^1, b^3, ..., b^(2^w - 1)
  for (let i = 1; i < 1 << (w - 1); i++) oddPowers.push(f.mul(oddPowers[i - 1], b2));
  let r: bigint | undefined; // undefined stands for 1, so no squarings are spent on it
  for (let i = 0; i < bits.length;) {
    if (bits[i] === "0") {
      if (r !== undefined) r = f.mul(r, r);
      i++;
      continue;
    }
    let j = Math.min(i + w, bits.length);
    while (bits[j - 1] === "0") j--;
    if (r !== undefined) { for (let s = i; s < j; s++) r = f.mul(r, r); }
    const odd = oddPowers[parseInt(bits.slice(i, j), 2) >> 1];
    r = r === undefined ? odd : f.mul(r, odd);
    i = j;
  }
  return f.out(r!);
}

/**
 * Base-2 exponentiation with fixed windows: multiplying by 2^d is a shift and a cheap reduction
 * of a number only d bits wider than m, so only the squarings cost a full multiplication. It
 * pays in Montgomery form, where a sliding window's table holds full-size numbers (about 15%
 * at 4096 bits); with `%` both measure alike. Widths 4 to 12 measured alike; 8 keeps the shifts
 * rare.
 */
function powerOfTwo(f: ModArith, bits: string): bigint {
  const W = 8;
  const lead = bits.length % W || W;
  let r = f.into((1n << BigInt(parseInt(bits.slice(0, lead), 2))) % f.m);
  for (let i = lead; i < bits.length; i += W) {
    for (let s = 0; s < W; s++) r = f.mul(r, r);
    const d = parseInt(bits.slice(i, i + W), 2);
    if (d) r = (r << BigInt(d)) % f.m;
  }
  return f.out(r);
}

function checkArguments(exponent: bigint, modulus: bigint): void {
  if (modulus < 1n) throw new RangeError("modPow: modulus must be >= 1");
  if (exponent < 0n) throw new RangeError("modPow: exponent must be >= 0");
}

/** `base` reduced into [0, modulus), or undefined when the result needs no multiplication. */
function reduce(base: bigint, exponent: bigint, modulus: bigint): bigint | undefined {
  if (modulus === 1n || exponent === 0n) return undefined;
  const b = base % modulus;
  const reduced = b < 0n ? b + modulus : b;
  return reduced < 2n ? undefined : reduced;
}

function trivialResult(base: bigint, exponent: bigint, modulus: bigint): bigint {
  if (modulus === 1n) return 0n;
  if (exponent === 0n) return 1n;
  const b = base % modulus;
  return b < 0n ? b + modulus : b;
}

interface Plan {
  readonly path: ModPowPath;
  /** The reduced base, unless the path is trivial. */
  readonly base: bigint;
  readonly bits: string;
}

/** The one place that picks modPow's path, from the arguments alone. */
function plan(base: bigint, exponent: bigint, modulus: bigint): Plan {
  checkArguments(exponent, modulus);
  const b = reduce(base, exponent, modulus);
  if (b === undefined) return { path: "trivial", base, bits: "" };
  const bits = exponent.toString(2);
  const montgomery = (modulus & 1n) === 1n && bits.length >= MONTGOMERY_MIN_EXPONENT_BITS;
  if (b === 2n) return { path: montgomery ? "montgomery-base2" : "base2", base: b, bits };
  return { path: montgomery ? "montgomery-window" : "window", base: b, bits };
}

/**
 * `base^exponent mod modulus` for any integer base, exponent >= 0 and modulus >= 1, with no
 * state kept between calls. Throws RangeError for a negative exponent or a modulus below 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modPow } from "./modpow.ts";
 * assert.equal(modPow(4n, 13n, 497n), 445n);
 * assert.equal(modPow(-2n, 3n, 5n), 2n); // -8 mod 5
 * ```
 */
export function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  const { path, base: b, bits } = plan(base, exponent, modulus);
  switch (path) {
    case "trivial":
      return trivialResult(base, exponent, modulus);
    case "base2":
      return powerOfTwo(new PlainArith(modulus), bits);
    case "window":
      return slidingWindow(new PlainArith(modulus), b, bits);
    case "montgomery-base2":
      return powerOfTwo(new MontgomeryArith(modulus), bits);
    default:
      return slidingWindow(new MontgomeryArith(modulus), b, bits);
  }
}

/**
 * The comb's rows (HAC 14.117, Lim-Lee): it keeps b^(2^(j*cols)) for each row j and the
 * product of every subset of rows, so b^e costs `cols` squarings and at most `cols`
 * multiplications, cols = ceil(bits / ROWS): 48 + 48 at 384 bits instead of the 384 squarings
 * of the base-2 path (about 3 times faster), 512 + 512 at 4096 bits. A table costs about
 * (ROWS - 1) * cols squarings and 2^ROWS products to build (~5 ms at 384 bits, ~40 ms at
 * 4096) and holds 2^ROWS numbers of the modulus's size (128 KiB at 4096 bits).
 */
const COMB_ROWS = 8;

/** Tables kept per precomputation: the shipped and the full-size exponent, say. */
const COMB_TABLES_KEPT = 2;

interface Comb {
  readonly cols: number;
  readonly table: bigint[];
}

function buildComb(f: ModArith, base: bigint, cols: number): Comb {
  const rows = [f.into(base)];
  for (let j = 1; j < COMB_ROWS; j++) {
    let r = rows[j - 1];
    for (let s = 0; s < cols; s++) r = f.mul(r, r);
    rows.push(r);
  }
  const table: bigint[] = [f.into(1n)];
  for (let j = 0; j < COMB_ROWS; j++) {
    const half = 1 << j;
    for (let s = 0; s < half; s++) table.push(s === 0 ? rows[j] : f.mul(table[s], rows[j]));
  }
  return { cols, table };
}

function combPow(f: ModArith, comb: Comb, bits: string): bigint {
  const { cols, table } = comb;
  const padded = bits.padStart(cols * COMB_ROWS, "0");
  const last = padded.length - 1;
  let r: bigint | undefined; // undefined stands for 1
  for (let c = cols - 1; c >= 0; c--) {
    if (r !== undefined) r = f.mul(r, r);
    let index = 0;
    for (let j = COMB_ROWS - 1; j >= 0; j--) {
      index = (index << 1) | (padded.charCodeAt(last - (j * cols + c)) - 48);
    }
    if (index) r = r === undefined ? table[index] : f.mul(r, table[index]);
  }
  return r === undefined ? 1n : f.out(r);
}

/** How many exponentiations a {@linkcode ModPowPrecomputation} ran on each path. */
export type ModPowStats = Readonly<Record<ModPowPath, number>> & {
  /** Fixed-base tables built so far: one per exponent size in use. */
  readonly tablesBuilt: number;
};

/**
 * Exponentiation modulo one odd modulus, many times, for a long-running caller: a Montgomery
 * context built once, and for the fixed base (a DH group's generator) comb tables of its
 * powers, built on first use for each exponent size and kept (at most two sizes). Every base
 * uses Montgomery multiplication, whatever the exponent size; the fixed base also uses the
 * comb. Results equal {@linkcode modPow}'s.
 *
 * Only the fixed base gets tables: a base a peer chose never does, so peers cannot make it
 * build or evict any.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modPow, ModPowPrecomputation } from "./modpow.ts";
 * const p = (1n << 521n) - 1n; // a Mersenne prime
 * const powers = new ModPowPrecomputation(p, 3n);
 * const x = (1n << 383n) + 12345n;
 * assert.equal(powers.pow(3n, x), modPow(3n, x, p)); // the comb
 * assert.equal(powers.pow(5n, x), modPow(5n, x, p)); // Montgomery, sliding window
 * assert.equal(powers.stats.comb, 1);
 * assert.equal(powers.stats["montgomery-window"], 1);
 * ```
 */
export class ModPowPrecomputation {
  /** The modulus every exponentiation uses. */
  readonly modulus: bigint;
  /** The base that gets comb tables, reduced modulo `modulus`. */
  readonly fixedBase: bigint;
  readonly #arith: MontgomeryArith;
  readonly #combs: Comb[] = [];
  readonly #runs: Record<ModPowPath, number> = {
    trivial: 0,
    window: 0,
    base2: 0,
    "montgomery-window": 0,
    "montgomery-base2": 0,
    comb: 0,
  };
  #tablesBuilt = 0;

  /**
   * Prepares for exponentiations modulo `modulus` (odd, >= 3) with `fixedBase` the base worth
   * tables. Cheap: tables are built on first use. Throws RangeError for an even modulus, which
   * Montgomery multiplication cannot use.
   */
  constructor(modulus: bigint, fixedBase: bigint) {
    if (modulus < 3n || (modulus & 1n) === 0n) {
      throw new RangeError("ModPowPrecomputation: modulus must be odd and >= 3");
    }
    this.modulus = modulus;
    this.fixedBase = ((fixedBase % modulus) + modulus) % modulus;
    this.#arith = new MontgomeryArith(modulus);
  }

  /** A snapshot of the counts of exponentiations per path, and of tables built. */
  get stats(): ModPowStats {
    return Object.freeze({ ...this.#runs, tablesBuilt: this.#tablesBuilt });
  }

  /**
   * `base^exponent mod modulus`, as {@linkcode modPow} computes it. Throws RangeError for a
   * negative exponent.
   */
  pow(base: bigint, exponent: bigint): bigint {
    checkArguments(exponent, this.modulus);
    const b = reduce(base, exponent, this.modulus);
    if (b === undefined) {
      this.#runs.trivial++;
      return trivialResult(base, exponent, this.modulus);
    }
    const bits = exponent.toString(2);
    if (b === this.fixedBase) {
      this.#runs.comb++;
      return combPow(this.#arith, this.#comb(Math.ceil(bits.length / COMB_ROWS)), bits);
    }
    if (b === 2n) {
      this.#runs["montgomery-base2"]++;
      return powerOfTwo(this.#arith, bits);
    }
    this.#runs["montgomery-window"]++;
    return slidingWindow(this.#arith, b, bits);
  }

  /** The table for exponents of up to `cols * COMB_ROWS` bits, built on first use. */
  #comb(cols: number): Comb {
    const index = this.#combs.findIndex((c) => c.cols === cols);
    const comb = index >= 0 ? this.#combs.splice(index, 1)[0] : this.#build(cols);
    this.#combs.unshift(comb);
    this.#combs.length = Math.min(this.#combs.length, COMB_TABLES_KEPT);
    return comb;
  }

  #build(cols: number): Comb {
    this.#tablesBuilt++;
    return buildComb(this.#arith, this.fixedBase, cols);
  }
}
