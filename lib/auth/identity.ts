/**
 * The responder's long-term Ed25519 identity (docs/protocol.md, "Authenticated key exchange"):
 * loading it from PKCS#8 PEM, its SHA-256 fingerprint, and signing with it.
 *
 * The private key lives in a non-extractable Web Crypto key, so nothing in this process can
 * read it back out. Loading refuses, with a message that says what to do, the keys people
 * plausibly pass by mistake: RSA, EC, X25519 or Ed448 keys, encrypted keys, public keys.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFingerprint } from "../crypto/fingerprint.ts";
 * import { Identity } from "./identity.ts";
 *
 * const { identity, pem } = await Identity.generate();
 * const loaded = await Identity.fromPem(pem);
 * assert.equal(loaded.fingerprint, identity.fingerprint);
 * assert.equal(parseFingerprint(identity.fingerprint.toUpperCase()), identity.fingerprint);
 * assert.equal((await loaded.sign(new TextEncoder().encode("hello"))).length, 64);
 * ```
 * @module
 */

import { DerError, DerReader } from "../crypto/der.ts";
import { fingerprint } from "../crypto/fingerprint.ts";
import { pemDecode, pemEncode, PemError } from "../crypto/pem.ts";

/** What is wrong with a would-be identity key file. */
export type IdentityErrorKind =
  | "not-pem"
  | "encrypted"
  | "wrong-algorithm"
  | "public-key"
  | "malformed";

/**
 * A key file that cannot serve as the identity. The message is one line that reads after the
 * file's name ("key.pem holds an RSA key; ...") and never contains key material.
 */
export class IdentityError extends Error {
  override name = "IdentityError";
  /** `kind` classifies, for callers that react to it; `message` says what to do. */
  constructor(readonly kind: IdentityErrorKind, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

const NEED = "--identity needs an Ed25519 private key (openssl genpkey -algorithm ed25519)";
const OID_ED25519 = "1.3.101.112";
// SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits, 32 bytes) } (RFC 8410).
const SPKI_PREFIX = Uint8Array.fromHex("302a300506032b6570032100");
const SPKI_LENGTH = SPKI_PREFIX.length + 32;

const OTHER_ALGORITHMS = new Map([
  ["1.2.840.113549.1.1.1", "an RSA key"],
  ["1.2.840.113549.1.1.10", "an RSA-PSS key"],
  ["1.2.840.10045.2.1", "an EC key"],
  ["1.2.840.10040.4.1", "a DSA key"],
  ["1.2.840.113549.1.3.1", "a DH key"],
  ["1.2.840.10046.2.1", "a DH key"],
  ["1.3.101.110", "an X25519 key (for key agreement, not signatures)"],
  ["1.3.101.111", "an X448 key (for key agreement, not signatures)"],
  ["1.3.101.113", "an Ed448 key"],
]);

// Labels of the other PEM blocks a key file plausibly holds (RFC 7468 and OpenSSL's own).
const OTHER_LABELS = new Map<string, [IdentityErrorKind, string]>([
  ["RSA PRIVATE KEY", ["wrong-algorithm", `holds an RSA key; ${NEED}`]],
  ["EC PRIVATE KEY", ["wrong-algorithm", `holds an EC key; ${NEED}`]],
  ["DSA PRIVATE KEY", ["wrong-algorithm", `holds a DSA key; ${NEED}`]],
  ["ENCRYPTED PRIVATE KEY", [
    "encrypted",
    "is encrypted (ENCRYPTED PRIVATE KEY); store it unencrypted and readable only by the " +
    "responder (openssl pkey -in OLD -out NEW)",
  ]],
  ["PUBLIC KEY", ["public-key", `is a public key; ${NEED}`]],
  ["RSA PUBLIC KEY", ["public-key", `is a public key; ${NEED}`]],
  ["CERTIFICATE", ["public-key", `is a certificate, which holds no private key; ${NEED}`]],
]);

/**
 * True when `der` is exactly an Ed25519 SubjectPublicKeyInfo (44 bytes, OID 1.3.101.112).
 * DER gives that structure one encoding, so comparing the fixed prefix is a full parse.
 */
export function isEd25519Spki(der: Uint8Array): boolean {
  return der.length === SPKI_LENGTH && SPKI_PREFIX.every((byte, i) => der[i] === byte);
}

/** The only PEM block in `text`, as DER, if it is an unencrypted PKCS#8 key. */
function privateKeyInfo(text: string): Uint8Array<ArrayBuffer> {
  const labels = [...text.matchAll(/^[ \t]*-----BEGIN ([^\r\n]*?)-----[ \t\r]*$/gm)]
    .map((m) => m[1]);
  if (labels.length === 0) {
    const what = text.trim() === "" ? "is empty" : "is not a PEM private key";
    throw new IdentityError("not-pem", `${what}; ${NEED}`);
  }
  if (labels.length > 1) {
    const need = "--identity needs a file with one Ed25519 private key";
    throw new IdentityError("malformed", `holds ${labels.length} PEM blocks; ${need}`);
  }
  const label = labels[0];
  const other = OTHER_LABELS.get(label);
  if (other) throw new IdentityError(...other);
  if (label !== "PRIVATE KEY") {
    const shown = /^[A-Z0-9 ]{1,40}$/.test(label) ? ` (${label})` : "";
    throw new IdentityError("not-pem", `is not a PEM private key${shown}; ${NEED}`);
  }
  try {
    return pemDecode(text, "PRIVATE KEY");
  } catch (e) {
    if (!(e instanceof PemError)) throw e;
    throw new IdentityError("malformed", `has a damaged PEM block (${e.message}); ${NEED}`, {
      cause: e,
    });
  }
}

/** The algorithm OID of a PKCS#8 PrivateKeyInfo (RFC 5208 §5); the rest is Web Crypto's job. */
function algorithmOf(der: Uint8Array): string {
  try {
    const outer = new DerReader(der);
    const info = outer.readSequence();
    outer.end();
    info.readInteger();
    return info.readSequence().readOid();
  } catch (e) {
    if (!(e instanceof DerError)) throw e;
    throw new IdentityError("malformed", `is not a valid PKCS#8 key (${e.message}); ${NEED}`, {
      cause: e,
    });
  }
}

/** A long-term Ed25519 signing key, with the public key and fingerprint that name it. */
export class Identity {
  /** "SHA256:" and 64 lowercase hex digits: SHA-256 over {@linkcode Identity.publicKeyDer}. */
  readonly fingerprint: string;
  #privateKey: CryptoKey;
  #spki: Uint8Array;

  private constructor(privateKey: CryptoKey, spki: Uint8Array, fingerprint: string) {
    this.#privateKey = privateKey;
    this.#spki = spki;
    this.fingerprint = fingerprint;
  }

  /**
   * Loads an unencrypted PKCS#8 "PRIVATE KEY" PEM holding one Ed25519 key, as
   * `openssl genpkey -algorithm ed25519` writes. Throws {@linkcode IdentityError} otherwise.
   */
  static async fromPem(text: string): Promise<Identity> {
    const der = privateKeyInfo(text);
    const oid = algorithmOf(der);
    if (oid !== OID_ED25519) {
      const what = OTHER_ALGORITHMS.get(oid) ?? `a key of another algorithm (OID ${oid})`;
      throw new IdentityError("wrong-algorithm", `holds ${what}; ${NEED}`);
    }
    let x: Uint8Array;
    try {
      // Web Crypto derives the public half only for extractable keys: read it once via JWK.
      const readable = await crypto.subtle.importKey("pkcs8", der, "Ed25519", true, ["sign"]);
      const jwk = await crypto.subtle.exportKey("jwk", readable);
      x = Uint8Array.fromBase64(jwk.x ?? "", { alphabet: "base64url" });
      if (x.length !== 32) throw new RangeError("Ed25519 public key is not 32 bytes");
    } catch (e) {
      throw new IdentityError("malformed", `is not a valid Ed25519 private key; ${NEED}`, {
        cause: e,
      });
    }
    const privateKey = await crypto.subtle.importKey("pkcs8", der, "Ed25519", false, ["sign"]);
    const spki = new Uint8Array(SPKI_LENGTH);
    spki.set(SPKI_PREFIX);
    spki.set(x, SPKI_PREFIX.length);
    return new Identity(privateKey, spki, await fingerprint(spki));
  }

  /** A fresh identity and its PKCS#8 PEM (64-character lines, final newline) to store. */
  static async generate(): Promise<{ identity: Identity; pem: string }> {
    const pair = await crypto.subtle.generateKey("Ed25519", true, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
    const pem = pemEncode("PRIVATE KEY", der);
    return { identity: await Identity.fromPem(pem), pem };
  }

  /** The public key as DER SubjectPublicKeyInfo (44 bytes); a fresh copy on each read. */
  get publicKeyDer(): Uint8Array {
    return this.#spki.slice();
  }

  /** The 64-byte Ed25519 signature (RFC 8032) of `data`. */
  async sign(data: Uint8Array): Promise<Uint8Array> {
    const signature = await crypto.subtle.sign(
      "Ed25519",
      this.#privateKey,
      data as Uint8Array<ArrayBuffer>,
    );
    return new Uint8Array(signature);
  }
}
