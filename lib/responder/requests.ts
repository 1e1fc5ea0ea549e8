/**
 * The responder's action requests (docs/protocol.md, steps 3 and 4): admission, then the
 * answer. Admission is synchronous and cheap (the size, the session, a ticket from the
 * {@linkcode InFlightBudget}); the answer decrypts, applies the action, encrypts, publishes,
 * and waits for the broker's acknowledgement. The ticket is released in one place, when the
 * answer is done with, whichever way it ends: dropped, failed, stopped, delivered or lost.
 *
 * @module
 */

import { type Action, applyAction } from "../protocol/actions.ts";
import { InvalidToken } from "../crypto/fernet.ts";
import { ms, printable, printableError, type RateLimitedLog } from "../log.ts";
import { MAX_MESSAGE_BYTES, MAX_PAYLOAD_BYTES } from "../protocol/limits.ts";
import { responseTopic } from "../protocol/topics.ts";
import { decodeUtf8 } from "../utf8.ts";
import { InFlightBudget, type InFlightLimits, type Ticket } from "./in_flight.ts";
import type { OpenedRequest, SessionKeys } from "./session_keys.ts";

/** Why a token that fails to verify most likely does: said in the line of its request. */
const INVALID_TOKEN = "invalid token (most likely its client agreed its key with another " +
  "responder on this broker, which answers the same netids, or it is of another session of " +
  "this netid)";

/** What an {@linkcode ActionRequests} needs. */
export interface ActionRequestsOptions {
  /** The live sessions: each netid's keys, from its latest key exchange. */
  sessions: { get(netid: string): SessionKeys | undefined };
  /** True while a key exchange for `netid` waits: said in the line of a request dropped. */
  keyExchangeQueued(netid: string): boolean;
  /** The caps on requests in flight. */
  inFlight: InFlightLimits;
  /**
   * A QoS 1 publish; `done` runs once the broker has acknowledged it or it can no longer be
   * delivered, and only then is its request's ticket released.
   */
  publish(topic: string, payload: string, done: () => void): void;
  /** Where the lines go. */
  lines: RateLimitedLog;
  /** Counts and logs (as a warning of `kind`) a message dropped. */
  drop(kind: string, message: string): void;
}

/**
 * Admits and answers action requests. `handle` each one as it arrives; `close()` stops
 * answering.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Fernet } from "../crypto/fernet.ts";
 * import { RateLimitedLog, silentLogger } from "../log.ts";
 * import { ActionRequests } from "./requests.ts";
 * import { SessionKeys } from "./session_keys.ts";
 * const fernet = await Fernet.create(new Uint8Array(32));
 * const published: string[] = [];
 * const requests = new ActionRequests({
 *   sessions: { get: (netid) => netid === "alice" ? SessionKeys.lab(fernet) : undefined },
 *   keyExchangeQueued: () => false,
 *   inFlight: { requests: 8, bytes: 1 << 20, requestsPerNetid: 4, bytesPerNetid: 1 << 18 },
 *   publish: (topic, payload, done) => (published.push(topic), done()),
 *   lines: new RateLimitedLog(silentLogger, { burst: 20, perSecond: 2 }),
 *   drop: () => {},
 * });
 * requests.handle("alice", "uppercase", new TextEncoder().encode(await fernet.encrypt("hi")));
 * await requests.settled();
 * assert.deepEqual(published, ["alice/uppercase/response"]);
 * assert.equal(requests.inFlight, 0);
 * ```
 */
export class ActionRequests {
  readonly #o: ActionRequestsOptions;
  readonly #budget: InFlightBudget;
  readonly #work = new Set<Promise<void>>();
  #answered = 0;
  #closed = false;

  constructor(options: ActionRequestsOptions) {
    this.#o = options;
    this.#budget = new InFlightBudget(options.inFlight);
  }

  /** Requests in flight now, from admission to the end of their answer. */
  get inFlight(): number {
    return this.#budget.requests;
  }

  /** Bytes in flight now (each request's own and its answer's, or what was reserved). */
  get bytesInFlight(): number {
    return this.#budget.bytes;
  }

  /** Requests answered (published) so far. */
  get answered(): number {
    return this.#answered;
  }

  /**
   * Takes the request of `netid` for `action`: admits it (synchronously) or drops it, and
   * answers it in the background.
   */
  handle(netid: string, action: Action, token: Uint8Array): void {
    const who = printable(netid);
    const admitted = this.#admit(netid, who, action, token);
    if (admitted === undefined) return;
    const { keys, ticket } = admitted;
    const work = this.#answer(netid, who, action, keys, token, ticket)
      .catch((error) => {
        this.#o.drop("bug", `${action} request for ${who} failed: ${printableError(error)}`);
      })
      .finally(() => {
        // The one release of the ticket: every way out of #answer comes through here.
        this.#budget.release(ticket);
        this.#work.delete(work);
      });
    this.#work.add(work);
  }

  /** Resolves once every request admitted so far is done with (and its ticket released). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#work]);
  }

  /**
   * Stops: nothing more is published, and answers under way end unsent. Resolves once every
   * admitted request is done with; an answer already published waits for its `done`, which
   * closing the connection brings.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.settled();
  }

  /** The request's session and ticket, or `undefined` when it was dropped. */
  #admit(
    netid: string,
    who: string,
    action: Action,
    token: Uint8Array,
  ): { keys: SessionKeys; ticket: Ticket } | undefined {
    const size = token.length;
    if (size > MAX_PAYLOAD_BYTES) {
      this.#o.drop(
        "size",
        `${action} request for ${who} dropped: ${size} bytes is over the ` +
          `${MAX_PAYLOAD_BYTES}-byte limit`,
      );
      return undefined;
    }
    // The session is looked up now: a client can only encrypt under a key already published,
    // so the current session is the only one that can open this token.
    const keys = this.#o.sessions.get(netid);
    if (keys === undefined) {
      const note = this.#o.keyExchangeQueued(netid) ? " (its key exchange is still queued)" : "";
      this.#o.drop("session", `${action} request for ${who} dropped: no session${note}`);
      return undefined;
    }
    // The answer is about the size of the request (twice it at most, for random): reserve both.
    const ticket = this.#budget.admit(netid, 3 * size);
    if (typeof ticket === "string") {
      const { limits } = this.#budget;
      const held = ticket === "share"
        ? `${who} already has requests being answered up to its share (` +
          `${limits.requestsPerNetid} requests, ${limits.bytesPerNetid} bytes)`
        : `no room in the in-flight budget (${this.#budget.requests} requests, ` +
          `${this.#budget.bytes} of ${limits.bytes} bytes in flight)`;
      this.#o.drop(ticket, `${action} request for ${who} dropped: ${held}`);
      return undefined;
    }
    return { keys, ticket };
  }

  /** Answers an admitted request; resolves once the answer is done with, however it ended. */
  async #answer(
    netid: string,
    who: string,
    action: Action,
    keys: SessionKeys,
    token: Uint8Array,
    ticket: Ticket,
  ): Promise<void> {
    const started = performance.now();
    let opened: OpenedRequest;
    try {
      // Under the key its topic binds it to, or the lab key: the answer goes under its kind.
      opened = await keys.open(action, token);
    } catch (error) {
      if (!(error instanceof InvalidToken)) throw error;
      // Not made with the key of this netid's session here. Seen for many netids, that is the
      // mark of another responder on the broker, whose clients' tokens reach us too.
      return this.#o.drop("token", `${action} request for ${who} dropped: ${INVALID_TOKEN}`);
    }
    const { plain, answerWith, bound } = opened;
    const text = plain.length > MAX_MESSAGE_BYTES ? undefined : decodeUtf8(plain);
    if (text === undefined) {
      const why = plain.length > MAX_MESSAGE_BYTES ? "over the size limit" : "not UTF-8";
      return this.#o.drop("text", `${action} request for ${who} dropped: the message is ${why}`);
    }
    const answer = await answerWith.encrypt(applyAction(action, text));
    this.#budget.resize(ticket, token.length + answer.length);
    if (this.#closed) return;
    const { promise: done, resolve } = Promise.withResolvers<void>();
    this.#o.publish(responseTopic(netid, action), answer, resolve);
    // Published first, logged after: a log line never costs an answer.
    this.#answered++;
    this.#o.lines.line(
      "info",
      "answer",
      `answered ${who}/${action} (${plain.length} bytes${bound ? ", bound tokens" : ""}) in ` +
        ms(performance.now() - started),
    );
    await done;
  }
}
