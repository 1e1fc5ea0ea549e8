/**
 * The responder's budget for requests in flight: how many, and how many bytes, from the moment
 * a request is admitted until the broker has acknowledged its answer. A global cap bounds the
 * memory that requests and their answers can hold; a per-netid share keeps one client (one
 * session) from taking all of it, so that other clients are still answered during a flood.
 *
 * @module
 */

/** The caps of an {@linkcode InFlightBudget}. */
export interface InFlightLimits {
  /** Requests in flight, in all. */
  requests: number;
  /** Bytes in flight, in all. */
  bytes: number;
  /** Requests in flight for one netid. */
  requestsPerNetid: number;
  /** Bytes in flight for one netid. */
  bytesPerNetid: number;
}

/** One admitted request's claim on the budget, live until handed back with `release`. */
export interface Ticket {
  readonly netid: string;
  /** The bytes it holds; `resize` changes them. */
  readonly bytes: number;
}

/** What the budget itself may change of a {@linkcode Ticket}. */
type HeldTicket = { -readonly [K in keyof Ticket]: Ticket[K] };

/** Why a request was not admitted. */
export type Refusal = "full" | "share";

/**
 * Counts requests and bytes in flight, in all and per netid.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { InFlightBudget } from "./in_flight.ts";
 * const budget = new InFlightBudget({
 *   requests: 3,
 *   bytes: 100,
 *   requestsPerNetid: 2,
 *   bytesPerNetid: 60,
 * });
 * const ticket = budget.admit("alice", 10);
 * budget.admit("alice", 10);
 * assert.equal(budget.admit("alice", 10), "share"); // alice has her share
 * assert.equal(typeof budget.admit("bob", 10), "object"); // bob still gets in
 * assert.equal(budget.admit("carol", 10), "full");
 * if (typeof ticket === "string") throw new Error(ticket);
 * budget.release(ticket);
 * assert.equal(budget.requests, 2);
 * ```
 */
export class InFlightBudget {
  readonly #perNetid = new Map<string, { requests: number; bytes: number }>();
  // The tickets admitted and not yet released: releasing twice, or resizing a released
  // ticket, must leave the counts alone, even once its netid has new tickets of its own.
  readonly #live = new WeakSet<Ticket>();
  #requests = 0;
  #bytes = 0;

  constructor(readonly limits: InFlightLimits) {}

  /** Requests in flight now. */
  get requests(): number {
    return this.#requests;
  }

  /** Bytes in flight now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Admits a request of `bytes` for `netid`, or says why not. */
  admit(netid: string, bytes: number): Ticket | Refusal {
    const own = this.#perNetid.get(netid) ?? { requests: 0, bytes: 0 };
    // A request larger than a whole share is still admitted when its netid has nothing else in
    // flight: the per-netid cap is about sharing, and the size cap is checked before this.
    const overShare = own.requests >= this.limits.requestsPerNetid ||
      (own.requests > 0 && own.bytes + bytes > this.limits.bytesPerNetid);
    if (overShare) return "share";
    if (this.#requests >= this.limits.requests || this.#bytes + bytes > this.limits.bytes) {
      return "full";
    }
    own.requests++;
    own.bytes += bytes;
    this.#perNetid.set(netid, own);
    this.#requests++;
    this.#bytes += bytes;
    const ticket: Ticket = { netid, bytes };
    this.#live.add(ticket);
    return ticket;
  }

  /**
   * Changes what `ticket` holds to `bytes` (e.g. once the answer's size is known); does
   * nothing to a released ticket.
   */
  resize(ticket: Ticket, bytes: number): void {
    if (!this.#live.has(ticket)) return;
    const own = this.#perNetid.get(ticket.netid)!;
    own.bytes += bytes - ticket.bytes;
    this.#bytes += bytes - ticket.bytes;
    (ticket as HeldTicket).bytes = bytes;
  }

  /** Gives `ticket`'s claim back; a second release of one ticket does nothing. */
  release(ticket: Ticket): void {
    if (!this.#live.delete(ticket)) return;
    const own = this.#perNetid.get(ticket.netid)!;
    own.requests--;
    own.bytes -= ticket.bytes;
    if (own.requests === 0) this.#perNetid.delete(ticket.netid);
    this.#requests--;
    this.#bytes -= ticket.bytes;
  }
}
