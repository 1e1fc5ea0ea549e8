/**
 * Finite-field Diffie-Hellman over a fixed safe-prime group (docs/protocol.md "Diffie-Hellman"):
 * the group file, key pairs, the public key's SubjectPublicKeyInfo in DER and PEM, the checks
 * on a peer's key, and the shared secret.
 *
 * The exponentiations come from ./modpow.ts. A one-shot caller needs nothing more; a
 * long-running one (a responder) passes a {@linkcode DhPrecomputation} in the options of
 * {@linkcode generateKeyPair} and {@linkcode computeSharedSecret} to get the faster warm paths.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   computeSharedSecret, decodePeerPublicKey, encodePublicKeyPem, generateKeyPair,
 *   parseDhParamsPem,
 * } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * const alice = generateKeyPair(group), bob = generateKeyPair(group);
 * // Each side sends its PEM and checks the other's.
 * const bobY = decodePeerPublicKey(group, encodePublicKeyPem(group, bob.publicKey)).y;
 * const aliceY = decodePeerPublicKey(group, encodePublicKeyPem(group, alice.publicKey)).y;
 * const z = computeSharedSecret(group, alice.privateKey, bobY);
 * assert.equal(z.length, 512);
 * assert.deepEqual(z, computeSharedSecret(group, bob.privateKey, aliceY));
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
import { modPow, ModPowPrecomputation } from "./modpow.ts";
import { pemDecode, pemEncode, PemError } from "./pem.ts";

/** A DH group: prime modulus `p`, generator `g`, and `p`'s length in bytes. */
export interface DhGroup {
  readonly p: bigint;
  readonly g: bigint;
  readonly byteLength: number;
}

/** A DH key pair: private exponent `x` and public value `y = g^x mod p`. */
export interface DhKeyPair {
  readonly privateKey: bigint;
  readonly publicKey: bigint;
}

/**
 * A peer public key we refuse: malformed, other parameters, or out of range. The message is
 * one line, without key material.
 */
export class DhKeyError extends Error {
  override name = "DhKeyError";
}

/** The DH parameter file itself is unusable. The message never quotes the file. */
export class DhParamsError extends Error {
  override name = "DhParamsError";
}

/**
 * Bits in the private exponents we generate. An exponent needs at least twice the group's
 * security strength in bits (NIST SP 800-56A r3 §5.6.1.1, RFC 7919 §5.2); a 4096-bit group
 * gives about 150 bits (SP 800-56A r3 App. D: 152), and RFC 7919 App. A asks 325 bits of a
 * 4096-bit group's exponent (OpenSSL uses 325 for its 4096-bit named groups). 384 is that
 * rounded up to whole 64-bit BigInt digits (382 of them random: the top bit is forced, and for
 * the lab's group the low bit is cleared, see generateKeyPair). Cost grows linearly with it;
 * beyond twice the strength the group, not the exponent, limits security.
 */
export const PRIVATE_KEY_BITS = 384;

/** Twice ~150 bits of strength, rounded to a byte: the floor docs/protocol.md sets. */
const MIN_PRIVATE_KEY_BITS = 320;

/** OID 1.2.840.113549.1.3.1, PKCS#3 dhKeyAgreement: parameters SEQUENCE { p, g [, l] }. */
export const OID_DH_KEY_AGREEMENT = "1.2.840.113549.1.3.1";

/** OID 1.2.840.10046.2.1, X9.42 dhpublicnumber: parameters SEQUENCE { p, g, q [, j] [, vp] }. */
export const OID_DH_PUBLIC_NUMBER = "1.2.840.10046.2.1";

function bitLength(n: bigint): number {
  return n <= 0n ? 0 : n.toString(2).length;
}

function malformed(e: unknown): never {
  if (e instanceof DerError || e instanceof PemError) {
    throw new DhKeyError(`peer public key is malformed: ${e.message}`, { cause: e });
  }
  throw e;
}

/**
 * The warm paths for one group, for a process that makes many key pairs and shared secrets
 * (a responder): Montgomery multiplication for every exponent size, and comb tables of the
 * generator's powers, built on first use (a few ms for 384-bit exponents) and kept. A one-shot
 * process is faster without it. `stats` counts the exponentiations per path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   computeSharedSecret, DhPrecomputation, generateKeyPair, parseDhParamsPem, PRIVATE_KEY_BITS,
 * } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * const precomputation = new DhPrecomputation(group); // once, for the process's lifetime
 * const peer = generateKeyPair(group);
 * for (let i = 0; i < 3; i++) {
 *   const ours = generateKeyPair(group, PRIVATE_KEY_BITS, { precomputation });
 *   computeSharedSecret(group, ours.privateKey, peer.publicKey, { precomputation });
 * }
 * assert.equal(precomputation.stats.comb, 3); // g^x
 * assert.equal(precomputation.stats["montgomery-window"], 3); // y^x
 * ```
 */
export class DhPrecomputation extends ModPowPrecomputation {
  /** Prepares for `group`; cheap, the tables are built on first use. */
  constructor(group: DhGroup) {
    super(group.p, group.g);
  }
}

/** Options of {@linkcode generateKeyPair} and {@linkcode computeSharedSecret}. */
export interface DhOptions {
  /** The group's warm paths, for a long-running caller; made for the same group. */
  readonly precomputation?: ModPowPrecomputation;
}

/** `base^exponent mod p`, through the precomputation when there is one. */
function power(group: DhGroup, base: bigint, exponent: bigint, options: DhOptions): bigint {
  const { precomputation } = options;
  if (precomputation === undefined) return modPow(base, exponent, group.p);
  if (precomputation.modulus !== group.p || precomputation.fixedBase !== group.g) {
    throw new RangeError("the DH precomputation was made for another group");
  }
  return precomputation.pow(base, exponent);
}

/**
 * Parses a PKCS#3 "DH PARAMETERS" PEM: DHParameter ::= SEQUENCE { prime, base,
 * privateValueLength OPTIONAL }. Checks p odd and 2 <= g <= p-2; an optional
 * privateValueLength is ignored (PRIVATE_KEY_BITS decides our exponent size).
 *
 * It does not re-prove that p is a safe prime: Miller-Rabin on p and (p-1)/2 costs dozens of
 * 4096-bit exponentiations on every start, and the file is local, trusted, and the same on both
 * sides; a peer cannot substitute its own group because its p and g must equal ours.
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
      throw new DhParamsError(`DH parameters are malformed: ${e.message}`, { cause: e });
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
 * below p-1, from crypto.getRandomValues, and y = g^x mod p. Where g = 2 is a quadratic
 * non-residue (p ≡ 3 mod 8, as the lab's p is), x is even, as OpenSSL draws it: with an odd x,
 * y is a non-residue too, and its Legendre symbol (one modexp for anyone) would give away x's
 * low bit, and a peer that checks y^q ≡ 1 (mod p) would refuse it. An even x puts y in the
 * subgroup of prime order q = (p-1)/2.
 *
 * @param bits exponent size, from 320 up to the bit length of p; PRIVATE_KEY_BITS by default.
 * @param options `precomputation` for a long-running caller.
 */
export function generateKeyPair(
  group: DhGroup,
  bits: number = PRIVATE_KEY_BITS,
  options: DhOptions = {},
): DhKeyPair {
  if (!Number.isInteger(bits) || bits < MIN_PRIVATE_KEY_BITS || bits > bitLength(group.p)) {
    throw new RangeError(
      `DH private key size must be ${MIN_PRIVATE_KEY_BITS}..${bitLength(group.p)} bits`,
    );
  }
  // Bit 0 of x is not secret for such a group anyway (the Legendre symbol of y tells it).
  const clearLowBit = group.g === 2n && group.p % 8n === 3n;
  for (;;) {
    let x = randomBits(bits) | (1n << BigInt(bits - 1));
    if (clearLowBit) x &= ~1n;
    // Only a full-size exponent can reach p-1; redrawing keeps x uniform on what remains.
    if (x > group.p - 2n) continue;
    const y = power(group, group.g, x, options);
    // Unreachable for a safe prime and 0 < x < (p-1)/2, but the peer would refuse such a y.
    if (y < 2n || y > group.p - 2n) continue;
    return { privateKey: x, publicKey: y };
  }
}

/**
 * One throwaway exponentiation shaped like a shared secret (a full-size base, a random
 * exponent of the shipped size), so that the real one finds V8's code optimized and the BigInt
 * heap grown: a fresh process pays about 7 ms more for its first `y^x` than for its second. A
 * client calls it while it would otherwise idle, waiting for the peer's key; the result is
 * discarded and no key material is involved.
 */
export function warmUp(group: DhGroup): void {
  modPow(group.p - 2n, randomBits(PRIVATE_KEY_BITS) | 1n, group.p);
}

/** The DER SubjectPublicKeyInfo of `y` in the PKCS#3 form, as pyca/cryptography emits it. */
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
 */
export function encodePublicKeyPem(group: DhGroup, y: bigint): string {
  return pemEncode("PUBLIC KEY", encodePublicKeyDer(group, y));
}

/** What a DH SubjectPublicKeyInfo says, before any check against our group. */
export interface DhPublicKeyInfo {
  readonly algorithm: typeof OID_DH_KEY_AGREEMENT | typeof OID_DH_PUBLIC_NUMBER;
  readonly p: bigint;
  readonly g: bigint;
  /** Only in the X9.42 form. */
  readonly q?: bigint;
  readonly y: bigint;
}

/**
 * A SubjectPublicKeyInfo of any algorithm, read as far as OpenSSL needs to decide that it is a
 * key: DH ones completely, others as far as their algorithm OID and key BIT STRING. Throws
 * DerError.
 */
function readKeyInfo(der: Uint8Array): DhPublicKeyInfo | { readonly algorithm: string } {
  const outer = new DerReader(der);
  const spki = outer.readSequence();
  outer.end();
  const algorithm = spki.readSequence();
  const oid = algorithm.readOid();
  if (oid !== OID_DH_KEY_AGREEMENT && oid !== OID_DH_PUBLIC_NUMBER) {
    spki.read(Tag.BIT_STRING);
    spki.end();
    return { algorithm: oid };
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

const notDh = (algorithm: string) => new DerError(`not a DH key (algorithm ${algorithm})`);

/**
 * Parses a DH SubjectPublicKeyInfo in either form (PKCS#3 or X9.42); throws DerError only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   encodePublicKeyDer, OID_DH_KEY_AGREEMENT, parseDhParamsPem, parsePublicKeyInfo,
 * } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * const info = parsePublicKeyInfo(encodePublicKeyDer(group, 5n));
 * assert.equal(info.algorithm, OID_DH_KEY_AGREEMENT);
 * assert.equal(info.y, 5n);
 * assert.equal(info.q, undefined); // only the X9.42 form carries q
 * ```
 */
export function parsePublicKeyInfo(der: Uint8Array): DhPublicKeyInfo {
  const info = readKeyInfo(der);
  if (!("y" in info)) throw notDh(info.algorithm);
  return info;
}

/**
 * The algorithms whose SubjectPublicKeyInfo OpenSSL 3.0 loads: RSA, RSA-PSS, DSA, EC, X25519,
 * X448, Ed25519, Ed448, SM2, and the two DH forms. A key of any other algorithm is no key to it.
 */
const OPENSSL_KEY_ALGORITHMS = new Set([
  "1.2.840.113549.1.1.1",
  "1.2.840.113549.1.1.10",
  "1.2.840.10040.4.1",
  "1.2.840.10045.2.1",
  "1.3.101.110",
  "1.3.101.111",
  "1.3.101.112",
  "1.3.101.113",
  "1.2.156.10197.1.301",
  OID_DH_KEY_AGREEMENT,
  OID_DH_PUBLIC_NUMBER,
]);

/**
 * Whether OpenSSL's decoders would load `der`, found under `label`, as a public key: a
 * SubjectPublicKeyInfo of an algorithm it knows under "PUBLIC KEY", of DH under "DH
 * PARAMETERS" and of X9.42 DH under "X9.42 DH PARAMETERS" (their type-specific decoders take
 * one), with anything after it ignored. It picks the block; the strict parse that follows may
 * still refuse it.
 */
function isPublicKey(der: Uint8Array, label: string): boolean {
  let info;
  try {
    const reader = new DerReader(der);
    reader.readElement();
    info = readKeyInfo(der.subarray(0, der.length - reader.remaining));
  } catch (e) {
    if (e instanceof DerError) return false;
    throw e;
  }
  if (label === "PUBLIC KEY") return OPENSSL_KEY_ALGORITHMS.has(info.algorithm);
  if (label === "DH PARAMETERS") return info.algorithm === OID_DH_KEY_AGREEMENT;
  return label === "X9.42 DH PARAMETERS" && info.algorithm === OID_DH_PUBLIC_NUMBER;
}

/**
 * The DER and contents of the key in a peer's "PUBLIC KEY" PEM, chosen as pyca's
 * load_pem_public_key chooses it (see ./pem.ts); a key of another algorithm is refused.
 */
function readPublicKeyPem(
  pemText: string,
): { der: Uint8Array<ArrayBuffer>; info: DhPublicKeyInfo } {
  let der: Uint8Array<ArrayBuffer>;
  let info: DhPublicKeyInfo | { readonly algorithm: string };
  try {
    der = pemDecode(pemText, "PUBLIC KEY", isPublicKey);
    info = readKeyInfo(der);
  } catch (e) {
    malformed(e);
  }
  if (!("y" in info)) malformed(notDh(info.algorithm));
  return { der, info };
}

function checkPeerY(group: DhGroup, y: bigint): void {
  // For a safe prime the only small subgroups are {1} and {1, p-1}, so this range is enough.
  if (y < 2n || y > group.p - 2n) {
    throw new DhKeyError("peer public key is out of range (need 2 <= y <= p-2)");
  }
}

function checkPeerInfo(group: DhGroup, info: DhPublicKeyInfo): bigint {
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

/** A peer's public key that passed every check: its y, and the DER it came in. */
export interface PeerPublicKey {
  readonly y: bigint;
  /** The SubjectPublicKeyInfo taken from the PEM, e.g. for a fingerprint. */
  readonly der: Uint8Array<ArrayBuffer>;
}

/**
 * Checks a peer's "PUBLIC KEY" PEM against our group and returns its y and DER. Reads the PEM
 * as pyca/cryptography's load_pem_public_key does (see ./pem.ts): the first block that is a
 * key, past text and other blocks; then its p and g against ours and `2 <= y <= p-2`. The one
 * reader of a peer's PEM key (the protocol's, `readPeerPublicKey`, bounds and decodes the
 * payload first). Throws DhKeyError only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodePeerPublicKey, encodePublicKeyDer, parseDhParamsPem } from "./dh.ts";
 * const group = parseDhParamsPem(await Deno.readTextFile("dhparam4096.pem"));
 * const der = encodePublicKeyDer(group, 5n);
 * const block = `-----BEGIN PUBLIC KEY-----\n${der.toBase64()}\n-----END PUBLIC KEY-----\n`;
 * assert.deepEqual(decodePeerPublicKey(group, `Our key:\n${block}`), { y: 5n, der });
 * ```
 */
export function decodePeerPublicKey(group: DhGroup, pemText: string): PeerPublicKey {
  const { der, info } = readPublicKeyPem(pemText);
  return { y: checkPeerInfo(group, info), der };
}

/**
 * Z = peerY^x mod p as big-endian bytes left-padded to group.byteLength, as pyca's exchange()
 * returns it (RFC 8446 §7.4.1, SP 800-56A r3 §5.7.1.1): stripping leading zeros instead breaks
 * about one exchange in 256. Re-checks the peer's range, so an unchecked y cannot slip through.
 *
 * @param options `precomputation` for a long-running caller.
 */
export function computeSharedSecret(
  group: DhGroup,
  privateKey: bigint,
  peerY: bigint,
  options: DhOptions = {},
): Uint8Array<ArrayBuffer> {
  checkPeerY(group, peerY);
  if (privateKey < 1n || privateKey > group.p - 2n) {
    throw new RangeError("DH private key out of range");
  }
  const z = power(group, peerY, privateKey, options);
  return Uint8Array.fromHex(z.toString(16).padStart(group.byteLength * 2, "0"));
}
