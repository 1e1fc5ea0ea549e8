/**
 * The responder's key-exchange worker (docs/protocol.md, steps 1, 2 and 2b): a key that
 * arrives is checked at once, cheaply, and queued in a bounded {@linkcode CoalescingQueue};
 * the worker takes one exchange per macrotask (so that action requests get the event loop
 * between two exponentiations instead of waiting for a whole backlog), drops one that waited
 * too long, computes our key pair and the session's keys, signs with an identity if it has
 * one, stores the session, and only then publishes step 2 (and 2b). A signed session keeps its
 * shared secret, for the bound tokens of a client that checked the signature (./session_keys.ts).
 *
 * @module
 */

import { signKeyExchange } from "../auth/signature.ts";
import type { Identity } from "../auth/identity.ts";
import {
  type DhGroup,
  DhPrecomputation,
  encodePublicKeyDer,
  generateKeyPair,
  PRIVATE_KEY_BITS,
} from "../crypto/dh.ts";
import { fingerprint } from "../crypto/fingerprint.ts";
import { pemEncode } from "../crypto/pem.ts";
import { ms, printable, printableError, type RateLimitedLog } from "../log.ts";
import { readPeerPublicKey, SessionSecret } from "../protocol/key_agreement.ts";
import { KEY_EXCHANGE, responseTopic, signatureTopic } from "../protocol/topics.ts";
import { CoalescingQueue } from "./kx_queue.ts";
import { SessionKeys } from "./session_keys.ts";

/** What a {@linkcode KeyExchanges} needs. */
export interface KeyExchangesOptions {
  /** The DH group of the key exchanges. */
  group: DhGroup;
  /** A long-term identity: given one, every key exchange is signed (step 2b). */
  identity?: Identity;
  /** Most netids waiting (`maxPendingKeyExchanges`). */
  capacity: number;
  /** An exchange that waited longer than this is dropped (`maxKeyExchangeWaitMs`). */
  maxWaitMs: number;
  /** Where a new session goes: the netid's keys, replacing any earlier session. */
  sessions: { set(netid: string, keys: SessionKeys): void };
  /** A QoS 1 publish; `done`, if given, runs once the broker acknowledged it (or it is lost). */
  publish(topic: string, payload: string, done?: () => void): void;
  /** Where the lines go. */
  lines: RateLimitedLog;
  /** Counts and logs (as a warning of `kind`) a message dropped. */
  drop(kind: string, message: string): void;
  /** Clock of the waits, in milliseconds; default `performance.now`. */
  now?: () => number;
}

/** A key exchange waiting for its turn. */
interface Pending {
  /** The client's public value, checked on arrival. */
  y: bigint;
  /** Its DER, as received: what the signature of step 2b covers. */
  der: Uint8Array;
}

/**
 * Answers key exchanges, one at a time. `offer` each step 1 message as it arrives; `close()`
 * stops the worker.
 */
export class KeyExchanges {
  readonly #o: KeyExchangesOptions;
  readonly #queue: CoalescingQueue<Pending>;
  readonly #precomputation: DhPrecomputation;
  readonly #now: () => number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #busy: Promise<void> | undefined;
  #completed = 0;
  #closed = false;

  /** `capacity` must be a positive integer (a RangeError otherwise; checkLimits sees to it). */
  constructor(options: KeyExchangesOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => performance.now());
    this.#queue = new CoalescingQueue(options.capacity, this.#now);
    this.#precomputation = new DhPrecomputation(options.group);
  }

  /** Key exchanges waiting now. */
  get pending(): number {
    return this.#queue.size;
  }

  /** Key exchanges completed (sessions made) so far. */
  get completed(): number {
    return this.#completed;
  }

  /** True while a key exchange for `netid` waits for its turn. */
  isQueued(netid: string): boolean {
    return this.#queue.has(netid);
  }

  /**
   * Takes the step 1 message of `netid`: checks the key (parsing and the range check, no
   * exponentiation) and queues it, replacing one that netid has waiting; drops it if it is bad
   * or the queue is full.
   */
  offer(netid: string, payload: Uint8Array): void {
    const who = printable(netid);
    let pending: Pending;
    try {
      // Checked now, so that the queue holds only keys worth the work.
      pending = readPeerPublicKey(this.#o.group, payload);
    } catch (error) {
      return this.#o.drop("key", `key exchange for ${who} dropped: ${printableError(error)}`);
    }
    const result = this.#queue.offer(netid, pending);
    if (result === "full") {
      return this.#o.drop(
        "queue",
        `key exchange queue full (${this.#queue.capacity} netids waiting): dropped ${who}`,
      );
    }
    if (result === "replaced") {
      this.#o.lines.line("debug", "kx", `key exchange for ${who} replaced a queued one`);
    }
    this.#schedule();
  }

  /**
   * Stops: forgets what waits, answers nothing more, and resolves once the exchange under way
   * (if any) has ended, without storing or publishing its result.
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.clear();
    await this.#busy;
  }

  /** The next exchange in a macrotask of its own, unless one is under way or scheduled. */
  #schedule(): void {
    if (this.#timer !== undefined || this.#busy || this.#closed) return;
    if (this.#queue.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#busy = this.#exchange().catch((error) => {
        this.#o.drop("bug", `key exchange failed: ${printableError(error)}`);
      }).finally(() => {
        this.#busy = undefined;
        this.#schedule();
      });
    }, 0);
  }

  async #exchange(): Promise<void> {
    const item = this.#queue.take();
    if (item === undefined || this.#closed) return;
    const netid = item.key;
    const who = printable(netid);
    const waited = this.#now() - item.since;
    if (waited > this.#o.maxWaitMs) {
      return this.#o.drop("stale", `key exchange for ${who} dropped: queued for ${ms(waited)}`);
    }
    const started = this.#now();
    const { group, identity } = this.#o;
    const dh = { precomputation: this.#precomputation };
    const ours = generateKeyPair(group, PRIVATE_KEY_BITS, dh);
    const secret = SessionSecret.agree(group, ours, item.value.y, dh);
    // Signed, the session may be a --trust client's, which binds its tokens; unsigned, no
    // client binds them, and the lab key is all the session needs.
    const keys = identity
      ? SessionKeys.authenticated(netid, secret)
      : SessionKeys.lab(await secret.labFernet());
    const ourDer = encodePublicKeyDer(group, ours.publicKey);
    const signature = identity
      ? await signKeyExchange(identity, netid, item.value.der, ourDer)
      : undefined;
    if (this.#closed) return;
    // Stored before the answer goes out: the client's request can only follow it.
    this.#o.sessions.set(netid, keys);
    this.#completed++;
    const computed = this.#now();
    const times = { queued: started - item.since, computed: computed - started, at: computed };
    const detail = this.#o.lines.verbose
      ? () => this.#detail(who, item.value.der, ourDer, times)
      : undefined;
    this.#o.publish(responseTopic(netid, KEY_EXCHANGE), pemEncode("PUBLIC KEY", ourDer), detail);
    if (signature) this.#o.publish(signatureTopic(netid), signature);
    this.#o.lines.line(
      "info",
      "session",
      `session for ${who} ready${signature ? " (signed)" : ""} in ` +
        `${ms(computed - started)} (queued ${ms(started - item.since)})`,
    );
  }

  /**
   * With -v, once the broker has acknowledged step 2: both keys' fingerprints, which the client
   * shows with its -v too (its own key, and its peer's) for a comparison out of band, and where
   * the time went.
   */
  #detail(
    who: string,
    theirs: Uint8Array,
    ours: Uint8Array,
    times: { queued: number; computed: number; at: number },
  ): void {
    const acknowledged = this.#now() - times.at;
    void Promise.all([fingerprint(theirs), fingerprint(ours)]).then(([client, responder]) => {
      this.#o.lines.line(
        "debug",
        "session",
        `session for ${who}: client key ${client}, responder key ${responder}; queued ` +
          `${ms(times.queued)}, computed in ${ms(times.computed)}, acknowledged by the broker ` +
          `${ms(acknowledged)} after`,
      );
    }, () => {});
  }
}
