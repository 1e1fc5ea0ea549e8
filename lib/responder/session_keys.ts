/**
 * The keys of one responder session, and which of them opens a request (docs/protocol.md,
 * "Bound tokens"). A responder without an identity has the lab's one Fernet for everything. A
 * responder with an identity signed the exchange, so its client may be one that checked the
 * signature and binds each token to its direction, netid and action: a request opens under
 * `K(request, netid, action)` first and is answered under `K(response, netid, action)`; a
 * request that does not opens under the lab key and is answered under it, as the lab says.
 *
 * Trying both opens no downgrade: nobody without the session's `Z` can make a token under
 * either key, so a token that opens under the lab key was made by the one who holds `Z`, and
 * chose the lab protocol. It costs one more HMAC on a lab client's request.
 *
 * Memory: a session of a responder with an identity keeps `Z` (512 bytes) and the bytes of the
 * last {@linkcode SessionKeys.KEPT} keys it derived (32 each: the lab key, a request's and its
 * answer's), and makes a Fernet of them for each request: a Fernet is two Web Crypto keys, ~12
 * KiB of resident memory, which at the cap of 2,000 sessions would be 24 MiB a key. So a signed
 * session costs less than a lab one, and a request one HKDF per key it has not derived yet, and
 * an import of the two Web Crypto keys per key it uses. bench/session_memory.ts weighs each
 * kind.
 *
 * @example A bound request is answered under the response key; a lab one under the lab key
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateKeyPair } from "../crypto/dh.ts";
 * import { loadLabGroup, SessionSecret } from "../protocol/key_agreement.ts";
 * import { SessionKeys } from "./session_keys.ts";
 *
 * const group = loadLabGroup();
 * const a = generateKeyPair(group), b = generateKeyPair(group);
 * const client = SessionSecret.agree(group, a, b.publicKey);
 * const keys = SessionKeys.authenticated("alice", SessionSecret.agree(group, b, a.publicKey));
 *
 * const binding = { netid: "alice", action: "uppercase" } as const;
 * const request = await client.boundFernet({ direction: "request", ...binding });
 * const opened = await keys.open("uppercase", await request.encrypt("hi"));
 * assert.equal(opened.bound, true);
 * const response = await client.boundFernet({ direction: "response", ...binding });
 * const answer = await opened.answerWith.encrypt("HI");
 * assert.equal(new TextDecoder().decode(await response.decrypt(answer)), "HI");
 *
 * const lab = await client.labFernet();
 * assert.equal((await keys.open("uppercase", await lab.encrypt("hi"))).bound, false);
 * ```
 * @module
 */

import { Fernet, InvalidToken } from "../crypto/fernet.ts";
import type { TokenBinding } from "../crypto/hkdf.ts";
import type { SessionSecret } from "../protocol/key_agreement.ts";

/** A request token opened: its plaintext, and the Fernet its answer goes under. */
export interface OpenedRequest {
  plain: Uint8Array;
  answerWith: Fernet;
  /** True when it was a bound token (and so is the answer). */
  bound: boolean;
}

/** The keys of one session: the lab's Fernet, or with an identity `Z` and what it derives. */
export class SessionKeys {
  /** Derived keys a session of a responder with an identity keeps, the last used. */
  static readonly KEPT = 3;
  readonly #lab: Fernet | undefined;
  readonly #netid: string;
  readonly #secret: SessionSecret | undefined;
  /** Least recently used first; promises, so that two requests at once derive a key once. */
  readonly #derived = new Map<string, Promise<Uint8Array>>();

  private constructor(netid: string, lab?: Fernet, secret?: SessionSecret) {
    this.#netid = netid;
    this.#lab = lab;
    this.#secret = secret;
  }

  /** A session of the lab protocol: one Fernet for both directions and every action. */
  static lab(fernet: Fernet): SessionKeys {
    return new SessionKeys("", fernet);
  }

  /**
   * A session whose exchange an identity signed, for `netid`: bound tokens first, the lab key
   * for a client that does not bind them.
   */
  static authenticated(netid: string, secret: SessionSecret): SessionKeys {
    return new SessionKeys(netid, undefined, secret);
  }

  /** Whether bound tokens are tried (the exchange was signed). */
  get authenticated(): boolean {
    return this.#secret !== undefined;
  }

  /** Derived keys kept now: at most {@linkcode SessionKeys.KEPT}, none for a lab session. */
  get kept(): number {
    return this.#derived.size;
  }

  /**
   * Verifies and decrypts a request token that arrived on `<netid>/<action>/request`. Rejects
   * with {@linkcode InvalidToken} when no key of the session opens it.
   */
  async open(action: string, token: string | Uint8Array): Promise<OpenedRequest> {
    if (this.#secret === undefined) {
      return { plain: await this.#lab!.decrypt(token), answerWith: this.#lab!, bound: false };
    }
    const binding = { netid: this.#netid, action };
    let plain: Uint8Array | undefined;
    try {
      plain = await (await this.#fernet({ direction: "request", ...binding })).decrypt(token);
    } catch (error) {
      if (!(error instanceof InvalidToken)) throw error;
    }
    if (plain !== undefined) {
      const answerWith = await this.#fernet({ direction: "response", ...binding });
      return { plain, answerWith, bound: true };
    }
    const lab = await this.#fernet(undefined);
    return { plain: await lab.decrypt(token), answerWith: lab, bound: false };
  }

  /** The Fernet of `binding` (`undefined`: the lab key), its key derived once while kept. */
  async #fernet(binding: TokenBinding | undefined): Promise<Fernet> {
    const name = binding === undefined ? "lab" : `${binding.direction}\0${binding.action}`;
    let key = this.#derived.get(name);
    if (key !== undefined) {
      this.#derived.delete(name); // re-inserted below: the most recently used goes last
    } else {
      key = this.#secret!.tokenKey(binding);
      if (this.#derived.size >= SessionKeys.KEPT) {
        this.#derived.delete(this.#derived.keys().next().value!);
      }
    }
    this.#derived.set(name, key);
    return await Fernet.create(await key);
  }
}
