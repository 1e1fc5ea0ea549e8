/**
 * What the client session receives, per topic, until it asks for it.
 *
 * @module
 */

/** A delivery, as the session keeps it; `seq` is its place in arrival order. */
export interface Delivery {
  topic: string;
  payload: Uint8Array;
  seq: number;
}

/**
 * Per-topic queues of live deliveries, taken in arrival order. Retained ones are stale by
 * definition (published before we asked): never queued, only counted, so that a session that
 * waits in vain can say it saw them. Bounded: past {@linkcode Inbox.CAP} deliveries or
 * {@linkcode Inbox.BYTES_CAP} bytes the oldest delivery of a topic is dropped, so a flood on our
 * topics cannot grow memory, whatever the size of what floods them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Inbox } from "./inbox.ts";
 *
 * const inbox = new Inbox(["a/key-exchange/response", "a/reverse/response"]);
 * inbox.put("a/key-exchange/response", new Uint8Array([1]), true);
 * const next = inbox.next("a/key-exchange/response");
 * inbox.put("a/key-exchange/response", new Uint8Array([2]), false);
 * assert.deepEqual((await next).payload, new Uint8Array([2]));
 * assert.equal(inbox.retained("a/key-exchange/response"), 1);
 * ```
 */
export class Inbox {
  /** How many live deliveries a topic keeps. */
  static readonly CAP = 64;
  /** How many payload bytes a topic keeps: two of the largest answers and more. */
  static readonly BYTES_CAP = 8 * 1024 * 1024;
  readonly #queues = new Map<string, Delivery[]>();
  readonly #bytes = new Map<string, number>();
  readonly #retained = new Map<string, number>();
  #seq = 0;
  #waiter: { topics: readonly string[]; resolve: (d: Delivery) => void } | undefined;

  /** An inbox for `topics`; deliveries on any other topic are ignored. */
  constructor(topics: Iterable<string>) {
    for (const topic of topics) {
      this.#queues.set(topic, []);
      this.#bytes.set(topic, 0);
      this.#retained.set(topic, 0);
    }
  }

  /** A delivery, as MQTT.js reports it (`retained`: the packet's retain flag). */
  put(topic: string, payload: Uint8Array, retained: boolean): void {
    const queue = this.#queues.get(topic);
    if (queue === undefined) return;
    if (retained) {
      this.#retained.set(topic, this.#retained.get(topic)! + 1);
      return;
    }
    const delivery = { topic, payload, seq: this.#seq++ };
    if (this.#waiter?.topics.includes(topic)) {
      const { resolve } = this.#waiter;
      this.#waiter = undefined;
      return resolve(delivery);
    }
    let bytes = this.#bytes.get(topic)! + payload.length;
    while (queue.length > 0 && (queue.length >= Inbox.CAP || bytes > Inbox.BYTES_CAP)) {
      bytes -= queue.shift()!.payload.length;
    }
    queue.push(delivery);
    this.#bytes.set(topic, bytes);
  }

  /** How many retained deliveries arrived on `topics`, all told. */
  retained(...topics: string[]): number {
    return topics.reduce((sum, topic) => sum + (this.#retained.get(topic) ?? 0), 0);
  }

  /** True when a live delivery on `topic` waits to be taken. */
  has(topic: string): boolean {
    return (this.#queues.get(topic)?.length ?? 0) > 0;
  }

  /** Drops what waits on `topics`: what arrived before it can be ours. */
  discard(...topics: string[]): void {
    for (const topic of topics) {
      this.#queues.get(topic)?.splice(0);
      if (this.#bytes.has(topic)) this.#bytes.set(topic, 0);
    }
  }

  /** The next live delivery on `topic`. */
  next(topic: string): Promise<Delivery> {
    return this.nextOf(topic);
  }

  /**
   * The next live delivery on any of `topics`: the earliest queued one, or the next to arrive.
   * One wait at a time: a new one replaces a wait that has not been answered.
   */
  nextOf(...topics: string[]): Promise<Delivery> {
    let earliest: Delivery[] | undefined;
    for (const topic of topics) {
      const queue = this.#queues.get(topic);
      if (queue === undefined) throw new RangeError(`not a topic of this inbox: ${topic}`);
      if (queue.length > 0 && (earliest === undefined || queue[0].seq < earliest[0].seq)) {
        earliest = queue;
      }
    }
    if (earliest) {
      const delivery = earliest.shift()!;
      this.#bytes.set(delivery.topic, this.#bytes.get(delivery.topic)! - delivery.payload.length);
      return Promise.resolve(delivery);
    }
    return new Promise((resolve) => this.#waiter = { topics, resolve });
  }
}
