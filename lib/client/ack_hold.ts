/**
 * Holding back one PUBACK, to get the responder's answer past the broker's Nagle algorithm.
 *
 * @module
 */

import type { IPublishPacket, MqttClient } from "mqtt";

/**
 * Holds back the PUBACK of a delivery on the key exchange topics, to get the answer past the
 * broker's Nagle algorithm.
 *
 * Against a broker with Nagle on (mosquitto's default): the broker acknowledges our request
 * with a PUBACK, a small segment we have no data to answer, so our kernel delays its TCP ACK
 * (~40 ms); the responder's answer, a few milliseconds later, then waits in the broker behind
 * that unacknowledged segment. If the PUBACK of the key exchange response is still ours to
 * send when the request's PUBACK arrives, sending it then carries that TCP ACK at once, and the
 * answer leaves the broker without the stall (measured in docs/performance.md).
 *
 * MQTT.js sends a PUBACK when its `handleMessage(packet, done)` calls `done`, and handles no
 * further packet until then, not even the PUBACK that should release the held one. So the
 * release is the first bytes that arrive on the socket after our request was written: in this
 * exchange, the broker's PUBACK for it. MQTT sets no deadline for a PUBACK; the session
 * disposes of the hold on every way out, which lets a held PUBACK go: before a polite
 * DISCONNECT it is sent; a forced end (our request unacknowledged) closes the socket before
 * MQTT.js's corked write of it leaves, which is no matter, as a clean session's state goes with
 * its connection.
 *
 * The life of a hold: {@linkcode AckHold.arm} once our key exchange request is acknowledged
 * (earlier, a stale delivery held would block that very acknowledgement);
 * {@linkcode AckHold.release} when a held delivery is not the one wanted (the authenticated
 * exchange waits for another, which cannot arrive while one is held);
 * {@linkcode AckHold.releaseOnNextData} once our request is written; dispose at the end.
 */
export class AckHold implements Disposable {
  readonly #client: MqttClient;
  readonly #topics: ReadonlySet<string>;
  #armed = false;
  #held: (() => void) | undefined;
  #onData: (() => void) | undefined;

  /**
   * Takes over `client.handleMessage`, to hold the PUBACK of live QoS 1 deliveries on `topics`
   * while armed. Unarmed, every PUBACK goes at once, as MQTT.js would send it.
   */
  constructor(client: MqttClient, topics: Iterable<string>) {
    this.#client = client;
    this.#topics = new Set(topics);
    client.handleMessage = (packet, done) => this.#offer(packet, done);
  }

  /** From now on, hold the PUBACK of each live delivery on the topics. */
  arm(): void {
    this.#armed = true;
  }

  /** Sends the held PUBACK now, if any; still armed. */
  release(): void {
    const done = this.#held;
    this.#held = undefined;
    if (this.#onData) this.#client.stream.off("data", this.#onData);
    this.#onData = undefined;
    done?.();
  }

  /**
   * Holds no more, and sends the held PUBACK at the next bytes from the broker, or at once if
   * the socket is paused: after a burst of large messages MQTT.js pauses it until it has
   * handled its backlog, which waits on the held packet, so no bytes would come until the
   * deadline.
   */
  releaseOnNextData(): void {
    this.#armed = false;
    if (this.#held === undefined) return;
    const stream = this.#client.stream;
    if (stream.readableFlowing !== true) return this.release();
    this.#onData = () => this.release();
    stream.once("data", this.#onData);
  }

  /** Holds no more, and lets the held PUBACK go now: the session's every way out. */
  [Symbol.dispose](): void {
    this.#armed = false;
    this.release();
  }

  /** MQTT.js's `handleMessage`: `done` sends the PUBACK and lets the next packet in. */
  #offer(packet: IPublishPacket, done: () => void): void {
    if (this.#armed && packet.qos === 1 && !packet.retain && this.#topics.has(packet.topic)) {
      this.#held = done;
      return;
    }
    done();
  }
}
