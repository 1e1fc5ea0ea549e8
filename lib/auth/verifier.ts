/**
 * The client's half of the authenticated key exchange (docs/protocol.md, "Authenticated key
 * exchange"): it pairs the key exchange responses (step 2) with the signatures (step 2b) that
 * arrive, in either order, and picks the first response that a trusted identity signed for our
 * own public key. What fails is counted by kind, so that a run that ends without one can say
 * what it saw.
 *
 * Anyone who can publish on the netid's topics can flood them, so the work per message is
 * bounded, cheapest checks first: a payload over its size limit is refused unread; a key or a
 * signature seen before (a repeat, what a replaying flood is made of) costs one lookup and is
 * counted; a signature's signer is named (SHA-256) once per identity, and only a trusted
 * signer's signatures are verified; each new message is verified against at most
 * {@linkcode KEPT} of the other kind, so no pair is verified twice. Memory is bounded too: at
 * most {@linkcode KEPT} candidates and trusted signatures are held, the oldest dropped first
 * when a new one comes, and only new ones come (repeats are dropped before they are held), so a
 * flood that cycles through recorded messages cannot push out a genuine exchange that arrives
 * during it; {@linkcode REMEMBERED} messages are remembered for the repeat check.
 *
 * @module
 */

import {
  encodeTranscript,
  readSignatureMessage,
  type SignatureMessage,
  SignatureMessageError,
} from "./signature.ts";
import { type DhGroup, DhKeyError } from "../crypto/dh.ts";
import { fingerprint } from "../crypto/fingerprint.ts";
import { MAX_PUBLIC_KEY_PEM_BYTES } from "../protocol/limits.ts";
import { readPeerPublicKey } from "../protocol/key_agreement.ts";

/** A key exchange response that passed every check: its public key and who signed it. */
export interface VerifiedKeyExchange {
  /** The responder's public value. */
  y: bigint;
  /** The DER SubjectPublicKeyInfo of it, as received. */
  der: Uint8Array;
  /** The fingerprint of the trusted identity that signed the exchange. */
  signedBy: string;
}

/** How many candidates, and how many trusted signatures, are held while waiting. */
export const KEPT = 16;
/** How many distinct keys, and how many distinct signatures, the repeat check remembers. */
export const REMEMBERED = 256;
/** How many identities' fingerprints (and trusted ones' verifying keys) are kept. */
const SIGNERS = 64;
/** Not the strict decoder: this text only names a payload for the repeat check. */
const LENIENT = new TextDecoder();

interface Candidate {
  y: bigint;
  der: Uint8Array;
}

interface HeldSignature {
  signer: Signer;
  signature: Uint8Array;
}

interface Signer {
  fingerprint: string;
  /** The verifying key, imported once, for a trusted signer only. */
  key?: Promise<CryptoKey>;
}

/**
 * Collects steps 2 and 2b for one exchange and reports the first trusted match. Offer messages
 * in arrival order, one at a time; each `offer…` resolves with the match once there is one.
 */
export class KeyExchangeVerifier {
  readonly #candidates: Candidate[] = [];
  readonly #signatures: HeldSignature[] = [];
  readonly #seenKeys = new RecentSet(REMEMBERED);
  readonly #seenSignatures = new RecentSet(REMEMBERED);
  readonly #signers = new Map<string, Promise<Signer>>();
  #matched: HeldSignature | undefined;
  readonly #counts = {
    responses: 0,
    refusedKeys: 0,
    signatures: 0,
    retained: 0,
    malformed: 0,
    unsupportedVersion: 0,
    untrusted: 0,
    repeated: 0,
  };
  #firstKeyProblem: string | undefined;
  #firstUntrusted: string | undefined;

  constructor(
    private readonly group: DhGroup,
    private readonly netid: string,
    private readonly ourDer: Uint8Array,
    private readonly trusted: ReadonlySet<string>,
  ) {}

  /** Retained messages on either topic: stale by definition, counted and ignored. */
  retained(count = 1): void {
    this.#counts.retained += count;
  }

  /** A step 2 payload (the responder's public key PEM). */
  async offerKey(payload: Uint8Array): Promise<VerifiedKeyExchange | undefined> {
    this.#counts.responses++;
    // Any bytes make a text, and two payloads that read as one text are both refused or both
    // the same valid UTF-8: the text is the key of the repeat check.
    const text = payload.length > MAX_PUBLIC_KEY_PEM_BYTES ? undefined : LENIENT.decode(payload);
    if (text !== undefined && !this.#seenKeys.add(text)) {
      this.#counts.repeated++;
      return undefined;
    }
    const candidate = this.#decodeKey(payload);
    if (candidate === undefined) return undefined;
    if (this.#candidates.length >= KEPT) this.#candidates.shift();
    this.#candidates.push(candidate);
    for (const held of this.#signatures) {
      const match = await this.#pair(held, candidate);
      if (match) return match;
    }
    return undefined;
  }

  /** A step 2b payload (the signature message). */
  async offerSignature(payload: Uint8Array): Promise<VerifiedKeyExchange | undefined> {
    this.#counts.signatures++;
    let message: SignatureMessage;
    try {
      message = readSignatureMessage(payload);
    } catch (error) {
      if (!(error instanceof SignatureMessageError)) throw error;
      if (error.kind === "unsupported-version") this.#counts.unsupportedVersion++;
      else this.#counts.malformed++;
      return undefined;
    }
    const identity = message.identity.toHex();
    if (!this.#seenSignatures.add(`${identity}.${message.signature.toHex()}`)) {
      this.#counts.repeated++;
      return undefined;
    }
    // The fingerprint first: a signature that verifies says only which key made it.
    const signer = await this.#signer(identity, message.identity);
    if (signer.key === undefined) {
      this.#counts.untrusted++;
      this.#firstUntrusted ??= signer.fingerprint;
      return undefined;
    }
    const held = { signer, signature: message.signature };
    if (this.#signatures.length >= KEPT) this.#signatures.shift();
    this.#signatures.push(held);
    for (const candidate of this.#candidates) {
      const match = await this.#pair(held, candidate);
      if (match) return match;
    }
    return undefined;
  }

  /** True when a trusted identity signed an exchange, but not ours with any response seen. */
  sawOtherExchangeSigned(): boolean {
    return this.#signatures.some((s) => s !== this.#matched);
  }

  /**
   * One line on why no exchange was verified, most telling first: a trusted signature over
   * another exchange is what a man in the middle leaves behind.
   */
  summary(): string {
    const c = this.#counts;
    const uncovered = this.#signatures.filter((s) => s !== this.#matched).length;
    const parts: string[] = [];
    if (uncovered > 0) {
      parts.push(
        `${plural(uncovered, "signature")} by the trusted identity did not cover this key ` +
          "exchange: possible man in the middle",
      );
    }
    if (c.responses === 0) parts.push("no key exchange response arrived");
    if (c.refusedKeys > 0) {
      parts.push(
        `${plural(c.refusedKeys, "key exchange response")} refused (${this.#firstKeyProblem})`,
      );
    }
    if (c.signatures === 0) parts.push("no signature arrived");
    if (c.untrusted > 0) {
      parts.push(
        `${plural(c.untrusted, "signature")} by other identities (${this.#firstUntrusted}…)`,
      );
    }
    if (c.malformed > 0) parts.push(`${plural(c.malformed, "malformed signature")}`);
    if (c.unsupportedVersion > 0) {
      parts.push(`${plural(c.unsupportedVersion, "signature")} of an unsupported version`);
    }
    if (c.retained > 0) parts.push(`${plural(c.retained, "retained (stale) message")} ignored`);
    if (c.repeated > 0) parts.push(`${plural(c.repeated, "repeated message")} ignored`);
    return parts.join("; ");
  }

  #decodeKey(payload: Uint8Array): Candidate | undefined {
    try {
      return readPeerPublicKey(this.group, payload);
    } catch (error) {
      if (!(error instanceof DhKeyError)) throw error;
      this.#counts.refusedKeys++;
      this.#firstKeyProblem ??= error.message;
      return undefined;
    }
  }

  /** Who an identity is: its fingerprint once per identity, a verifying key if trusted. */
  #signer(hex: string, identity: Uint8Array): Promise<Signer> {
    let signer = this.#signers.get(hex);
    if (signer === undefined) {
      signer = fingerprint(identity).then((fp) => {
        if (!this.trusted.has(fp)) return { fingerprint: fp };
        const key = crypto.subtle.importKey("spki", identity.slice(), "Ed25519", false, [
          "verify",
        ]);
        key.catch(() => {}); // #pair finds out, if it is ever used
        return { fingerprint: fp, key };
      });
      if (this.#signers.size >= SIGNERS) this.#signers.delete(this.#signers.keys().next().value!);
      this.#signers.set(hex, signer);
    }
    return signer;
  }

  async #pair(
    held: HeldSignature,
    candidate: Candidate,
  ): Promise<VerifiedKeyExchange | undefined> {
    const transcript = encodeTranscript(this.netid, this.ourDer, candidate.der);
    let valid: boolean;
    try {
      valid = await crypto.subtle.verify(
        "Ed25519",
        await held.signer.key!,
        held.signature as Uint8Array<ArrayBuffer>,
        transcript as Uint8Array<ArrayBuffer>,
      );
    } catch {
      valid = false; // an identity Web Crypto cannot use verifies nothing
    }
    if (!valid) return undefined;
    this.#matched = held;
    return { y: candidate.y, der: candidate.der, signedBy: held.signer.fingerprint };
  }
}

/** A set of at most `capacity` strings, the oldest forgotten first. */
class RecentSet {
  readonly #items = new Set<string>();
  constructor(readonly capacity: number) {}

  /** Adds `item`; false if it was there already (then nothing changes). */
  add(item: string): boolean {
    if (this.#items.has(item)) return false;
    if (this.#items.size >= this.capacity) this.#items.delete(this.#items.values().next().value!);
    this.#items.add(item);
    return true;
  }
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
