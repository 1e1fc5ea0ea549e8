/**
 * Finite-field Diffie-Hellman over a fixed safe-prime group (PROTOCOL.md "Diffie-Hellman"):
 * the group file, key pairs, the public key's SubjectPublicKeyInfo PEM, peer-key checks, and
 * the shared secret, with our own BigInt modular exponentiation.
 *
 * Timing: V8 BigInt arithmetic is not constant time, and neither is the sliding window here.
 * That is the accepted cost of a pure-TypeScript client; the secret exponent is fresh per run.
 *
 * @example
 * ```ts
 * import {
 *   computeSharedSecret, decodePublicKeyPem, encodePublicKeyPem, generateKeyPair,
 *   parseDhParamsPem,
 * } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * const ours = generateKeyPair(group);
 * const theirs = generateKeyPair(group);
 * const peerY = decodePublicKeyPem(group, encodePublicKeyPem(group, theirs.publicKey));
 * const z = computeSharedSecret(group, ours.privateKey, peerY); // 512 bytes
 * ```
 * @module
 */

import {
  DerError,
  DerReader,
  encodeBitString,
  encodeInteger,
  encodeOid,
  encodeSequence,
  Tag,
} from "./der.ts";
import { pemDecode, pemEncode, PemError } from "./pem.ts";

/**
 * A DH group: prime modulus `p`, generator `g`, and `p`'s length in bytes.
 *
 * @example
 * ```ts
 * import { type DhGroup, parseDhParamsPem } from "./dh.ts";
 * const group: DhGroup = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * group.byteLength; // 512
 * ```
 */
export interface DhGroup {
  readonly p: bigint;
  readonly g: bigint;
  readonly byteLength: number;
}

/**
 * A DH key pair: private exponent `x` and public value `y = g^x mod p`.
 *
 * @example
 * ```ts
 * import { type DhKeyPair, encodePublicKeyPem, generateKeyPair, parseDhParamsPem } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * const pair: DhKeyPair = generateKeyPair(group);
 * const pem = encodePublicKeyPem(group, pair.publicKey); // only y is sent; x never leaves
 * ```
 */
export interface DhKeyPair {
  readonly privateKey: bigint;
  readonly publicKey: bigint;
}

/**
 * A peer public key we refuse: malformed, other parameters, or out of range. One line, no
 * key material.
 *
 * @example
 * ```ts
 * import { DhKeyError } from "./dh.ts";
 * throw new DhKeyError("peer public key is out of range (need 2 <= y <= p-2)");
 * ```
 */
export class DhKeyError extends Error {
  /** Builds the error with a one-line `message`. */
  constructor(message: string) {
    super(message);
    this.name = "DhKeyError";
  }
}

/**
 * The DH parameter file itself is unusable.
 *
 * @example
 * ```ts
 * import { DhParamsError } from "./dh.ts";
 * throw new DhParamsError("DH prime p must be odd");
 * ```
 */
export class DhParamsError extends Error {
  /** Builds the error with a one-line `message`. */
  constructor(message: string) {
    super(message);
    this.name = "DhParamsError";
  }
}

/**
 * Bits in the private exponents we generate. An exponent needs at least twice the group's
 * security strength in bits (NIST SP 800-56A r3 §5.6.1.1, RFC 7919 §5.2); a 4096-bit group
 * gives about 150 bits (SP 800-56A r3 App. D: 152), and RFC 7919 App. A asks 325 bits of a
 * 4096-bit group's exponent (OpenSSL uses 325 for its 4096-bit named groups). 384 is that
 * rounded up to whole 64-bit BigInt digits (383 of them random: the top bit is forced). Cost
 * grows linearly with it; beyond 2s bits the group, not the exponent, limits security.
 *
 * @example
 * ```ts
 * import { PRIVATE_KEY_BITS } from "./dh.ts";
 * console.log(PRIVATE_KEY_BITS); // 384
 * ```
 */
export const PRIVATE_KEY_BITS = 384;

/** Twice ~150 bits of strength, rounded to a byte (the floor of PROTOCOL.md). */
const MIN_PRIVATE_KEY_BITS = 320;

/**
 * OID 1.2.840.113549.1.3.1, PKCS#3 dhKeyAgreement: parameters SEQUENCE { p, g [, l] }.
 *
 * @example
 * ```ts
 * import { encodePublicKeyDer, OID_DH_KEY_AGREEMENT, parseDhParamsPem } from "./dh.ts";
 * import { parsePublicKeyInfo } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * parsePublicKeyInfo(encodePublicKeyDer(group, 2n)).algorithm === OID_DH_KEY_AGREEMENT; // true
 * ```
 */
export const OID_DH_KEY_AGREEMENT = "1.2.840.113549.1.3.1";
/**
 * OID 1.2.840.10046.2.1, X9.42 dhpublicnumber: parameters SEQUENCE { p, g, q [, j] [, vp] }.
 *
 * @example
 * ```ts
 * import { type DhPublicKeyInfo, OID_DH_PUBLIC_NUMBER } from "./dh.ts";
 * const hasSubgroupOrder = (info: DhPublicKeyInfo) => info.algorithm === OID_DH_PUBLIC_NUMBER;
 * ```
 */
export const OID_DH_PUBLIC_NUMBER = "1.2.840.10046.2.1";

function bitLength(n: bigint): number {
  if (n <= 0n) return 0;
  const hex = n.toString(16);
  return hex.length * 4 - (Math.clz32(parseInt(hex[0], 16)) - 28);
}

function malformed(e: unknown): never {
  if (e instanceof DerError || e instanceof PemError) {
    throw new DhKeyError(`peer public key is malformed: ${e.message}`);
  }
  throw e;
}

// ---------------------------------------------------------------------------------------------
// Modular exponentiation

/** Multiplication in some representation of Z/m (plain residues or Montgomery form). */
interface ModArith {
  readonly m: bigint;
  into(x: bigint): bigint;
  out(x: bigint): bigint;
  mul(a: bigint, b: bigint): bigint;
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

/** Montgomery multiplication (HAC 14.36) with R = 2^k, k a whole number of 64-bit digits. */
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

let lastMontgomery: MontgomeryArith | undefined;

/**
 * Montgomery or `%`, measured (bench/dh_micro.ts, medians): in a warm process a REDC (three
 * products, two masks, a shift) costs about 15-25% less than `%` of the 8192-bit product, and
 * modPow 10-15% less. But it allocates about three times as many bytes per multiplication,
 * and in a fresh process the first few MB of BigInt garbage land on never-touched pages whose
 * first-touch faults dominate (here, a VM): a one-shot 384-bit keygen then takes about
 * 1.8x as long with Montgomery. The CLI runs once per process, so short exponents use `%`;
 * long ones (4096-bit: about 10% faster even cold) use Montgomery. The last context is kept
 * because p is the only hot modulus.
 */
const MONTGOMERY_MIN_EXPONENT_BITS = 1024;

/**
 * What makes a process "warm" for a modulus: this many modPow calls with it in a row. The CLI
 * makes two (keygen, shared secret) and keeps the cold-process choices; a responder or a
 * benchmark makes thousands, and past this point gets the paths that pay off only warm:
 * Montgomery for short exponents too (about 18% off y^x at 384 bits) and the fixed-base comb.
 */
const WARM_CALLS = 4;

let hotModulus: bigint | undefined;
let hotCalls = 0;

/** Counts consecutive calls with `m`; true once the process is warm for it. */
function warmFor(m: bigint): boolean {
  if (hotModulus !== m) hotModulus = m, hotCalls = 0;
  return ++hotCalls > WARM_CALLS;
}

function arithmetic(m: bigint, exponentBits: number, warm: boolean): ModArith {
  if (!(m & 1n) || (exponentBits < MONTGOMERY_MIN_EXPONENT_BITS && !warm)) {
    return new PlainArith(m);
  }
  if (lastMontgomery?.m !== m) lastMontgomery = new MontgomeryArith(m);
  return lastMontgomery;
}

// ---------------------------------------------------------------------------------------------
// Fixed-base comb (HAC 14.117, Lim-Lee): the generator never changes, so a warm process can
// precompute b^(2^(j*cols)) for the ROWS rows and every product of a subset of them; then
// b^e costs `cols` squarings and at most `cols` multiplications, cols = ceil(bits / ROWS):
// 48 + 48 at 384 bits instead of the 384 squarings of the base-2 path (about 3x faster), 512 +
// 512 at 4096 bits. Building costs about (ROWS - 1) * cols squarings + 2^ROWS products, once
// per (base, modulus, exponent size): ~5 ms at 384 bits, ~40 ms at 4096; 2^ROWS numbers of
// p's size are kept (128 KiB at 4096 bits).

const COMB_ROWS = 8;

interface Comb {
  readonly f: ModArith;
  readonly base: bigint;
  readonly bits: number;
  readonly cols: number;
  readonly table: bigint[];
}

const combs: Comb[] = [];
const COMBS_KEPT = 2; // the shipped and the full-size exponent, say

function buildComb(f: ModArith, base: bigint, bits: number): Comb {
  const cols = Math.ceil(bits / COMB_ROWS);
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
  return { f, base, bits, cols, table };
}

function combPow(comb: Comb, bits: string): bigint {
  const { f, cols, table } = comb;
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

/** The comb for (base, m, bits), built on first use; only ever called in a warm process. */
function combFor(f: ModArith, base: bigint, bits: number): Comb {
  const found = combs.find((c) => c.f === f && c.base === base && c.bits === bits);
  if (found) return found;
  const comb = buildComb(f, base, bits);
  combs.unshift(comb);
  combs.length = Math.min(combs.length, COMBS_KEPT);
  return comb;
}

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
 * at 4096 bits); with `%` that table's small powers of two are cheap already and both measure
 * alike. Widths 4 to 12 measured alike; 8 keeps the shifts rare.
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

/**
 * `base^exponent mod modulus` for any base, exponent >= 0 and modulus >= 1: sliding windows,
 * Montgomery multiplication for long exponents over odd moduli, and a faster path for base 2
 * (the DH generator). A process that keeps using one modulus (a responder) also gets
 * Montgomery for short exponents and, for a base marked `fixedBase`, a precomputed comb. Not
 * constant time.
 *
 * `fixedBase` says the base is a long-lived constant (the group's generator), worth a table of
 * 256 of its powers. Never set it for a base a peer chose: each new base would build (and
 * cache, evicting the generator's) a table, and small peer keys would double the cost of every
 * key exchange.
 *
 * @example
 * ```ts
 * import { modPow } from "./dh.ts";
 * console.log(modPow(4n, 13n, 497n)); // 445n
 * ```
 */
export function modPow(
  base: bigint,
  exponent: bigint,
  modulus: bigint,
  options: { fixedBase?: boolean } = {},
): bigint {
  if (modulus < 1n) throw new RangeError("modPow: modulus must be >= 1");
  if (exponent < 0n) throw new RangeError("modPow: exponent must be >= 0");
  if (modulus === 1n) return 0n;
  if (exponent === 0n) return 1n;
  base %= modulus;
  if (base < 0n) base += modulus;
  if (base < 2n) return base;
  const bits = exponent.toString(2);
  const warm = warmFor(modulus);
  const f = arithmetic(modulus, bits.length, warm);
  if (warm && options.fixedBase && f instanceof MontgomeryArith) {
    return combPow(combFor(f, base, bits.length), bits);
  }
  return base === 2n ? powerOfTwo(f, bits) : slidingWindow(f, base, bits);
}

// ---------------------------------------------------------------------------------------------
// Group and keys

/**
 * Parses a PKCS#3 "DH PARAMETERS" PEM: DHParameter ::= SEQUENCE { prime, base,
 * privateValueLength OPTIONAL }. Checks p odd and 2 <= g <= p-2; an optional
 * privateValueLength is ignored (PRIVATE_KEY_BITS decides our exponent size).
 *
 * It does not re-prove that p is a safe prime: Miller-Rabin on p and (p-1)/2 costs dozens of
 * 4096-bit exponentiations on every start, and the file is local, trusted, and the same on both
 * sides; a peer cannot substitute its own group because its p and g must equal ours.
 *
 * @example
 * ```ts
 * import { parseDhParamsPem } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * console.log(group.byteLength); // 512
 * ```
 */
export function parseDhParamsPem(pemText: string): DhGroup {
  let p: bigint, g: bigint;
  try {
    const outer = new DerReader(pemDecode(pemText, "DH PARAMETERS"));
    const params = outer.readSequence();
    outer.end();
    p = params.readPositiveInteger();
    g = params.readPositiveInteger();
    if (params.remaining) params.readPositiveInteger(); // privateValueLength
    params.end();
  } catch (e) {
    if (e instanceof DerError || e instanceof PemError) {
      throw new DhParamsError(`DH parameters are malformed: ${e.message}`);
    }
    throw e;
  }
  if (!(p & 1n)) throw new DhParamsError("DH prime p must be odd");
  if (g < 2n || g > p - 2n) throw new DhParamsError("DH generator g must satisfy 2 <= g <= p-2");
  return Object.freeze({ p, g, byteLength: Math.ceil(bitLength(p) / 8) });
}

function randomBits(bits: number): bigint {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(bits / 8)));
  bytes[0] &= 0xff >> (bytes.length * 8 - bits);
  return BigInt("0x" + bytes.toHex());
}

/**
 * Generates a key pair: x uniform among `bits`-bit numbers (top bit set, so the size is exact)
 * below p-1, from crypto.getRandomValues, and y = g^x mod p.
 *
 * @param bits exponent size, from 320 up to the bit length of p; PRIVATE_KEY_BITS by default.
 * @example
 * ```ts
 * import { generateKeyPair, parseDhParamsPem } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * const { privateKey, publicKey } = generateKeyPair(group);
 * ```
 */
export function generateKeyPair(group: DhGroup, bits: number = PRIVATE_KEY_BITS): DhKeyPair {
  if (!Number.isInteger(bits) || bits < MIN_PRIVATE_KEY_BITS || bits > bitLength(group.p)) {
    throw new RangeError(
      `DH private key size must be ${MIN_PRIVATE_KEY_BITS}..${bitLength(group.p)} bits`,
    );
  }
  for (;;) {
    const x = randomBits(bits) | (1n << BigInt(bits - 1));
    // Only a full-size exponent can reach p-1; redrawing keeps x uniform on what remains.
    if (x > group.p - 2n) continue;
    const y = modPow(group.g, x, group.p, { fixedBase: true });
    // Unreachable for a safe prime and x < (p-1)/2, but the peer would refuse such a y.
    if (y < 2n || y > group.p - 2n) continue;
    return { privateKey: x, publicKey: y };
  }
}

/**
 * One throwaway exponentiation shaped like a shared secret (a full-size base, a random
 * exponent of the shipped size), so that the real one finds V8's code optimized and the BigInt
 * heap grown: a fresh process pays about 7 ms more for its first `y^x` than for its second. The
 * client calls it while it would otherwise idle, waiting for the peer's key (a default
 * mosquitto alone holds that key back ~35 ms, see README *Performance*); the result is
 * discarded and no key material is involved.
 *
 * @example
 * ```ts
 * import { parseDhParamsPem, warmUp } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * warmUp(group); // ~8 ms of CPU in a fresh process, less once warm
 * ```
 */
export function warmUp(group: DhGroup): void {
  modPow(group.p - 2n, randomBits(PRIVATE_KEY_BITS) | 1n, group.p);
}

/**
 * The DER SubjectPublicKeyInfo of `y` in the PKCS#3 form, as pyca/cryptography emits it.
 *
 * @example
 * ```ts
 * import { encodePublicKeyDer, generateKeyPair, parseDhParamsPem } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * const der = encodePublicKeyDer(group, generateKeyPair(group).publicKey);
 * ```
 */
export function encodePublicKeyDer(group: DhGroup, y: bigint): Uint8Array<ArrayBuffer> {
  if (y < 2n || y > group.p - 2n) throw new RangeError("DH public key out of range");
  return encodeSequence(
    encodeSequence(
      encodeOid(OID_DH_KEY_AGREEMENT),
      encodeSequence(encodeInteger(group.p), encodeInteger(group.g)),
    ),
    encodeBitString(encodeInteger(y)),
  );
}

/**
 * The "PUBLIC KEY" PEM of `y` (PKCS#3 SubjectPublicKeyInfo), byte-identical to
 * pyca/cryptography's `public_bytes(PEM, SubjectPublicKeyInfo)`.
 *
 * @example
 * ```ts
 * import { encodePublicKeyPem, generateKeyPair, parseDhParamsPem } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * const pem = encodePublicKeyPem(group, generateKeyPair(group).publicKey);
 * ```
 */
export function encodePublicKeyPem(group: DhGroup, y: bigint): string {
  return pemEncode("PUBLIC KEY", encodePublicKeyDer(group, y));
}

/**
 * What a DH SubjectPublicKeyInfo says, before any check against our group.
 *
 * @example
 * ```ts
 * import { type DhPublicKeyInfo, encodePublicKeyDer, parseDhParamsPem } from "./dh.ts";
 * import { parsePublicKeyInfo } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * const info: DhPublicKeyInfo = parsePublicKeyInfo(encodePublicKeyDer(group, 2n));
 * info.q; // undefined: we emit the PKCS#3 form, which has no q
 * ```
 */
export interface DhPublicKeyInfo {
  readonly algorithm: typeof OID_DH_KEY_AGREEMENT | typeof OID_DH_PUBLIC_NUMBER;
  readonly p: bigint;
  readonly g: bigint;
  /** Only in the X9.42 form. */
  readonly q?: bigint;
  readonly y: bigint;
}

/**
 * Parses a DH SubjectPublicKeyInfo in either form (PKCS#3 or X9.42); throws DerError only.
 *
 * @example
 * ```ts
 * import { encodePublicKeyDer, parsePublicKeyInfo, parseDhParamsPem } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * parsePublicKeyInfo(encodePublicKeyDer(group, 2n)).y; // 2n
 * ```
 */
export function parsePublicKeyInfo(der: Uint8Array): DhPublicKeyInfo {
  const outer = new DerReader(der);
  const spki = outer.readSequence();
  outer.end();
  const algorithm = spki.readSequence();
  const oid = algorithm.readOid();
  if (oid !== OID_DH_KEY_AGREEMENT && oid !== OID_DH_PUBLIC_NUMBER) {
    throw new DerError(`not a DH key (algorithm ${oid})`);
  }
  const params = algorithm.readSequence();
  algorithm.end();
  const p = params.readPositiveInteger();
  const g = params.readPositiveInteger();
  let q: bigint | undefined;
  if (oid === OID_DH_KEY_AGREEMENT) {
    if (params.remaining) params.readPositiveInteger(); // privateValueLength
  } else {
    q = params.readPositiveInteger();
    if (params.peekTag() === Tag.INTEGER) params.readPositiveInteger(); // j
    if (params.remaining) { // ValidationParms ::= SEQUENCE { seed BIT STRING, pgenCounter }
      const validation = params.readSequence();
      validation.readBitString();
      validation.readPositiveInteger();
      validation.end();
    }
  }
  params.end();
  const key = new DerReader(spki.readBitString());
  const y = key.readInteger();
  key.end();
  spki.end();
  return { algorithm: oid, p, g, q, y };
}

function checkPeerY(group: DhGroup, y: bigint): void {
  // For a safe prime the only small subgroups are {1} and {1, p-1}, so this range is enough.
  if (y < 2n || y > group.p - 2n) {
    throw new DhKeyError("peer public key is out of range (need 2 <= y <= p-2)");
  }
}

/**
 * Checks a peer's DER SubjectPublicKeyInfo against our group and returns its y; throws
 * DhKeyError only.
 *
 * @example
 * ```ts
 * import { decodePublicKeyDer, encodePublicKeyDer, parseDhParamsPem } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * decodePublicKeyDer(group, encodePublicKeyDer(group, 5n)); // 5n
 * ```
 */
export function decodePublicKeyDer(group: DhGroup, der: Uint8Array): bigint {
  let info: DhPublicKeyInfo;
  try {
    info = parsePublicKeyInfo(der);
  } catch (e) {
    malformed(e);
  }
  // X9.42 also names the subgroup order; for a safe prime the only honest q is (p-1)/2.
  if (
    info.p !== group.p || info.g !== group.g ||
    (info.q !== undefined && info.q !== (group.p - 1n) / 2n)
  ) {
    throw new DhKeyError("peer public key uses different DH parameters (p/g)");
  }
  checkPeerY(group, info.y);
  return info.y;
}

/**
 * Checks a peer's "PUBLIC KEY" PEM (PKCS#3 or X9.42 SubjectPublicKeyInfo) against our group and
 * returns its y. Throws DhKeyError only: malformed, other p/g, or y outside [2, p-2].
 *
 * @example
 * ```ts
 * import { decodePublicKeyPem, encodePublicKeyPem, parseDhParamsPem } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * decodePublicKeyPem(group, encodePublicKeyPem(group, 5n)); // 5n
 * ```
 */
export function decodePublicKeyPem(group: DhGroup, pemText: string): bigint {
  let der: Uint8Array;
  try {
    der = pemDecode(pemText, "PUBLIC KEY");
  } catch (e) {
    malformed(e);
  }
  return decodePublicKeyDer(group, der);
}

/**
 * Z = peerY^x mod p as big-endian bytes left-padded to group.byteLength, as pyca's exchange()
 * returns it (RFC 8446 §7.4.1, SP 800-56A r3 §5.7.1.1): stripping leading zeros instead breaks
 * about one exchange in 256. Re-checks the peer's range, so an unchecked y cannot slip through.
 *
 * @example
 * ```ts
 * import { computeSharedSecret, generateKeyPair, parseDhParamsPem } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * const a = generateKeyPair(group), b = generateKeyPair(group);
 * computeSharedSecret(group, a.privateKey, b.publicKey); // 512 bytes, equal for b with a's y
 * ```
 */
export function computeSharedSecret(group: DhGroup, privateKey: bigint, peerY: bigint): Uint8Array {
  checkPeerY(group, peerY);
  if (privateKey < 1n || privateKey > group.p - 2n) {
    throw new RangeError("DH private key out of range");
  }
  const z = modPow(peerY, privateKey, group.p);
  return Uint8Array.fromHex(z.toString(16).padStart(group.byteLength * 2, "0"));
}

/**
 * "SHA256:" and lowercase hex of SHA-256 over the DER SubjectPublicKeyInfo inside a
 * "PUBLIC KEY" PEM, for comparing keys out of band. Throws DhKeyError if it is not one.
 *
 * @example
 * ```ts
 * import { encodePublicKeyPem, parseDhParamsPem, publicKeyFingerprint } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * await publicKeyFingerprint(encodePublicKeyPem(group, 5n)); // "SHA256:9f86…"
 * ```
 */
export async function publicKeyFingerprint(pemText: string): Promise<string> {
  let der: Uint8Array<ArrayBuffer>;
  try {
    der = pemDecode(pemText, "PUBLIC KEY");
    parsePublicKeyInfo(der);
  } catch (e) {
    malformed(e);
  }
  return "SHA256:" + new Uint8Array(await crypto.subtle.digest("SHA-256", der)).toHex();
}
