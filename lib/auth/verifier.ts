/**
 * The client's half of the authenticated key exchange (docs/protocol.md, "Authenticated key
 * exchange"): it pairs the key exchange responses (step 2) with the signatures (step 2b) that
 * arrive, in either order, and picks the first response that a trusted identity signed for our
 * own public key. What fails is counted by kind, so that a run that ends without one can say
 * what it saw.
 *
 * @module
 */

import {
  type KeyExchangeSignature,
  parseSignatureMessage,
  SignatureMessageError,
} from "./signature.ts";
import { type DhGroup, DhKeyError } from "../crypto/dh.ts";
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

/** How many of each are kept while waiting: enough for a few clients sharing a netid. */
const KEPT = 16;

interface Candidate {
  y: bigint;
  der: Uint8Array;
}

/**
 * Collects steps 2 and 2b for one exchange and reports the first trusted match. Offer messages
 * in arrival order; each `offer…` resolves with the match once there is one.
 */
export class KeyExchangeVerifier {
  readonly #candidates: Candidate[] = [];
  readonly #signatures: KeyExchangeSignature[] = [];
  readonly #matched = new Set<KeyExchangeSignature>();
  readonly #counts = {
    responses: 0,
    refusedKeys: 0,
    signatures: 0,
    retained: 0,
    malformed: 0,
    unsupportedVersion: 0,
    untrusted: 0,
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
    const candidate = this.#decodeKey(payload);
    if (candidate === undefined) return undefined;
    if (this.#candidates.length >= KEPT) this.#candidates.shift();
    this.#candidates.push(candidate);
    for (const signature of this.#signatures) {
      const match = await this.#pair(signature, candidate);
      if (match) return match;
    }
    return undefined;
  }

  /** A step 2b payload (the signature message). */
  async offerSignature(payload: Uint8Array): Promise<VerifiedKeyExchange | undefined> {
    this.#counts.signatures++;
    let signature: KeyExchangeSignature;
    try {
      signature = await parseSignatureMessage(payload);
    } catch (error) {
      if (!(error instanceof SignatureMessageError)) throw error;
      if (error.kind === "unsupported-version") this.#counts.unsupportedVersion++;
      else this.#counts.malformed++;
      return undefined;
    }
    // The fingerprint first: a signature that verifies says only which key made it.
    if (!this.trusted.has(signature.fingerprint)) {
      this.#counts.untrusted++;
      this.#firstUntrusted ??= signature.fingerprint;
      return undefined;
    }
    if (this.#signatures.length >= KEPT) this.#signatures.shift();
    this.#signatures.push(signature);
    for (const candidate of this.#candidates) {
      const match = await this.#pair(signature, candidate);
      if (match) return match;
    }
    return undefined;
  }

  /** True when a trusted identity signed an exchange, but not ours with any response seen. */
  sawOtherExchangeSigned(): boolean {
    return this.#signatures.some((s) => !this.#matched.has(s));
  }

  /**
   * One line on why no exchange was verified, most telling first: a trusted signature over
   * another exchange is what a man in the middle leaves behind.
   */
  summary(): string {
    const c = this.#counts;
    const uncovered = this.#signatures.filter((s) => !this.#matched.has(s)).length;
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

  async #pair(
    signature: KeyExchangeSignature,
    candidate: Candidate,
  ): Promise<VerifiedKeyExchange | undefined> {
    if (!(await signature.verify(this.netid, this.ourDer, candidate.der))) return undefined;
    this.#matched.add(signature);
    return { y: candidate.y, der: candidate.der, signedBy: signature.fingerprint };
  }
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
