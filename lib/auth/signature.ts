/**
 * Step 2b of the authenticated key exchange (docs/protocol.md, "Authenticated key exchange"):
 * the responder's Ed25519 signature over the transcript of one Diffie-Hellman exchange, and the
 * strict parser a client runs on it.
 *
 * A signature that verifies only says which key signed; the client must also check that
 * {@linkcode KeyExchangeSignature.fingerprint} is one its user trusts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Identity } from "./identity.ts";
 * import { parseSignatureMessage, signKeyExchange } from "./signature.ts";
 *
 * const { identity } = await Identity.generate();
 * const a = Uint8Array.of(0x30, 0x00); // the client's DH public key, DER
 * const b = Uint8Array.of(0x30, 0x01, 0x00); // the responder's
 * const payload = await signKeyExchange(identity, "alice", a, b);
 * const message = await parseSignatureMessage(new TextEncoder().encode(payload));
 * assert.equal(message.fingerprint, identity.fingerprint);
 * assert.equal(await message.verify("alice", a, b), true);
 * assert.equal(await message.verify("mallory", a, b), false);
 * ```
 * @module
 */

import { fingerprint } from "../crypto/fingerprint.ts";
import { type Identity, isEd25519Spki } from "./identity.ts";
import { decodeUtf8 } from "../utf8.ts";

const CONTEXT = new TextEncoder().encode("secure_mqtt key exchange v1\0");
// A valid message is about 190 bytes; the cap only bounds the work done on junk.
const MAX_MESSAGE_BYTES = 4096;
const SIGNATURE_BYTES = 64;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The bytes the responder signs: the context string and a zero byte, then the netid (UTF-8,
 * uint16 length), `a` and `b` (uint32 lengths), all lengths big-endian. Throws RangeError for a
 * netid over 65535 UTF-8 bytes or with lone surrogates, which UTF-8 cannot carry.
 */
export function encodeTranscript(netid: string, a: Uint8Array, b: Uint8Array): Uint8Array {
  if (!netid.isWellFormed()) throw new RangeError("netid is not well-formed Unicode");
  const id = new TextEncoder().encode(netid);
  if (id.length > 0xffff) throw new RangeError("netid is longer than 65535 UTF-8 bytes");
  if (a.length > 0xffffffff || b.length > 0xffffffff) {
    throw new RangeError("a DH public key is longer than 2^32 - 1 bytes");
  }
  const out = new Uint8Array(CONTEXT.length + 2 + id.length + 4 + a.length + 4 + b.length);
  const view = new DataView(out.buffer);
  let at = 0;
  const put = (bytes: Uint8Array) => {
    out.set(bytes, at);
    at += bytes.length;
  };
  put(CONTEXT);
  view.setUint16(at, id.length);
  at += 2;
  put(id);
  view.setUint32(at, a.length);
  at += 4;
  put(a);
  view.setUint32(at, b.length);
  at += 4;
  put(b);
  return out;
}

/**
 * The step 2b payload, as it is published (UTF-8 on the wire): JSON with version 1, the
 * identity's SPKI and its signature of the transcript of (`netid`, `a`, `b`), both in standard
 * padded base64.
 */
export async function signKeyExchange(
  identity: Identity,
  netid: string,
  a: Uint8Array,
  b: Uint8Array,
): Promise<string> {
  const signature = await identity.sign(encodeTranscript(netid, a, b));
  return JSON.stringify({
    version: 1,
    identity: identity.publicKeyDer.toBase64(),
    signature: signature.toBase64(),
  });
}

/** A step 2b payload that is not a version 1 signature message. Never echoes the payload. */
export class SignatureMessageError extends Error {
  override name = "SignatureMessageError";
  /**
   * `kind` is "unsupported-version" for a well-formed message of another version, else
   * "malformed"; `message` is a short reason.
   */
  constructor(readonly kind: "malformed" | "unsupported-version", message: string) {
    super(message);
  }
}

/** A parsed step 2b message: who claims to have signed, and a check of the claim. */
export interface KeyExchangeSignature {
  /** "SHA256:" and 64 lowercase hex digits of SHA-256 over {@linkcode identity}. */
  readonly fingerprint: string;
  /** The signer's Ed25519 public key, DER SubjectPublicKeyInfo (44 bytes). */
  readonly identity: Uint8Array;
  /** The 64-byte Ed25519 signature. */
  readonly signature: Uint8Array;
  /**
   * Whether the signature covers this exchange's transcript: false, never a throw, if not.
   * Throws RangeError only for a netid that {@linkcode encodeTranscript} refuses.
   */
  verify(netid: string, a: Uint8Array, b: Uint8Array): Promise<boolean>;
}

const malformed = (reason: string) => new SignatureMessageError("malformed", reason);

function base64Member(message: Record<string, unknown>, name: string): Uint8Array {
  const value = message[name];
  if (typeof value !== "string") throw malformed(`"${name}" is missing or not a string`);
  // fromBase64 alone skips whitespace and accepts missing padding; one value, one encoding.
  if (!BASE64.test(value)) throw malformed(`"${name}" is not standard padded base64`);
  try {
    return Uint8Array.fromBase64(value, { lastChunkHandling: "strict" });
  } catch {
    throw malformed(`"${name}" is not canonical base64`);
  }
}

/**
 * Parses a step 2b payload strictly (size, UTF-8, JSON object, version 1, canonical base64, an
 * Ed25519 SPKI, a 64-byte signature; unknown members ignored). Throws
 * {@linkcode SignatureMessageError}.
 */
export async function parseSignatureMessage(payload: Uint8Array): Promise<KeyExchangeSignature> {
  if (payload.length > MAX_MESSAGE_BYTES) {
    throw malformed(`larger than ${MAX_MESSAGE_BYTES} bytes`);
  }
  let parsed: unknown;
  try {
    // decodeUtf8 keeps a BOM in the text, for JSON.parse to refuse: RFC 8259 §8.1 forbids one.
    const text = decodeUtf8(payload);
    if (text === undefined) throw malformed("not UTF-8 JSON");
    parsed = JSON.parse(text);
  } catch {
    throw malformed("not UTF-8 JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw malformed("not a JSON object");
  }
  const message = parsed as Record<string, unknown>;
  if (typeof message.version !== "number") throw malformed('"version" is missing or not a number');
  if (message.version !== 1) {
    throw new SignatureMessageError("unsupported-version", "unsupported version (expected 1)");
  }
  const identity = base64Member(message, "identity");
  const signature = base64Member(message, "signature");
  if (!isEd25519Spki(identity)) throw malformed('"identity" is not an Ed25519 public key');
  if (signature.length !== SIGNATURE_BYTES) {
    throw malformed(`"signature" is not ${SIGNATURE_BYTES} bytes`);
  }
  // verify works on copies, so a caller that edits the exposed arrays cannot change its answer.
  const spki = identity.slice();
  const sig = signature.slice();
  let key: Promise<CryptoKey> | undefined;
  return {
    fingerprint: await fingerprint(identity),
    identity,
    signature,
    async verify(netid, a, b) {
      const transcript = encodeTranscript(netid, a, b) as Uint8Array<ArrayBuffer>;
      try {
        key ??= crypto.subtle.importKey("spki", spki, "Ed25519", false, ["verify"]);
        return await crypto.subtle.verify("Ed25519", await key, sig, transcript);
      } catch {
        return false;
      }
    },
  };
}
