/** lib/client/inbox.ts: live deliveries in arrival order, retained ones counted, the bound. */

import assert from "node:assert/strict";
import { Inbox } from "../../lib/client/inbox.ts";

const KEY = "alice/key-exchange/response";
const SIGNATURE = "alice/key-exchange/signature";
const ANSWER = "alice/reverse/response";

function bytes(n: number): Uint8Array {
  return Uint8Array.of(n);
}

function inbox(): Inbox {
  return new Inbox([KEY, SIGNATURE, ANSWER]);
}

Deno.test("a delivery waits in its topic's queue until taken; other topics are ignored", async () => {
  const box = inbox();
  assert.equal(box.has(KEY), false);
  box.put(KEY, bytes(1), false);
  box.put("bob/key-exchange/response", bytes(2), false);
  assert.equal(box.has(KEY), true);
  assert.equal(box.has("bob/key-exchange/response"), false);
  const got = await box.next(KEY);
  assert.equal(got.topic, KEY);
  assert.deepEqual(got.payload, bytes(1));
  assert.equal(box.has(KEY), false);
});

Deno.test("a wait is answered by the next delivery on its topics, not by others", async () => {
  const box = inbox();
  const waiting = box.next(ANSWER);
  box.put(KEY, bytes(1), false);
  box.put(ANSWER, bytes(2), false);
  assert.deepEqual((await waiting).payload, bytes(2));
  assert.equal(box.has(KEY), true, "the key exchange response stays queued");
  assert.equal(box.has(ANSWER), false, "handed to the wait, not queued as well");
});

Deno.test("nextOf: the earliest delivery of several topics, in arrival order", async () => {
  const box = inbox();
  box.put(SIGNATURE, bytes(1), false);
  box.put(KEY, bytes(2), false);
  box.put(SIGNATURE, bytes(3), false);
  const order = [];
  for (let i = 0; i < 3; i++) {
    const { topic, payload } = await box.nextOf(KEY, SIGNATURE);
    order.push([topic, payload[0]]);
  }
  assert.deepEqual(order, [[SIGNATURE, 1], [KEY, 2], [SIGNATURE, 3]]);
  const waiting = box.nextOf(KEY, SIGNATURE);
  box.put(KEY, bytes(4), false);
  assert.deepEqual((await waiting).payload, bytes(4));
  assert.throws(() => box.nextOf("bob/reverse/response"), RangeError);
});

Deno.test("retained deliveries are never queued nor handed to a wait, only counted per topic", async () => {
  const box = inbox();
  const waiting = box.next(KEY);
  box.put(KEY, bytes(1), true);
  box.put(SIGNATURE, bytes(2), true);
  box.put(SIGNATURE, bytes(3), true);
  box.put(ANSWER, bytes(4), true);
  box.put("bob/key-exchange/signature", bytes(5), true);
  assert.equal(box.has(KEY) || box.has(SIGNATURE) || box.has(ANSWER), false);
  assert.equal(box.retained(KEY), 1);
  assert.equal(box.retained(KEY, SIGNATURE), 3);
  assert.equal(box.retained(ANSWER), 1);
  assert.equal(box.retained("bob/key-exchange/signature"), 0);
  box.put(KEY, bytes(6), false);
  assert.deepEqual((await waiting).payload, bytes(6), "the first live one");
});

Deno.test("discard drops what waits on the topics named", async () => {
  const box = inbox();
  box.put(KEY, bytes(1), false);
  box.put(SIGNATURE, bytes(2), false);
  box.put(ANSWER, bytes(3), false);
  box.discard(KEY, SIGNATURE);
  assert.equal(box.has(KEY), false);
  assert.equal(box.has(SIGNATURE), false);
  assert.deepEqual((await box.next(ANSWER)).payload, bytes(3));
});

Deno.test("bounded: past CAP deliveries a topic drops its oldest", async () => {
  const box = inbox();
  const sent = Inbox.CAP + 10;
  for (let i = 0; i < sent; i++) box.put(ANSWER, bytes(i), false);
  box.put(KEY, bytes(0), false);
  const kept = [];
  while (box.has(ANSWER)) kept.push((await box.next(ANSWER)).payload[0]);
  assert.deepEqual(kept, Array.from({ length: Inbox.CAP }, (_, i) => sent - Inbox.CAP + i));
  assert.equal(box.has(KEY), true, "each topic has its own bound");
});

Deno.test("Inbox keeps at most BYTES_CAP bytes a topic, the newest, however large each is", async () => {
  const topic = "a/reverse/response";
  const inbox = new Inbox([topic]);
  const big = (mark: number) => new Uint8Array(3 * 1024 * 1024).fill(mark);
  for (let i = 1; i <= 5; i++) inbox.put(topic, big(i), false); // 15 MiB offered
  const kept: number[] = [];
  while (inbox.has(topic)) kept.push((await inbox.next(topic)).payload[0]);
  // Two of 3 MiB fit in 8 MiB; the newest are kept.
  assert.deepEqual(kept, [4, 5]);
  // Taking a delivery gives its bytes back: the next two fit again.
  inbox.put(topic, big(6), false);
  inbox.put(topic, big(7), false);
  assert.equal((await inbox.next(topic)).payload[0], 6);
  assert.equal((await inbox.next(topic)).payload[0], 7);
  inbox.put(topic, big(8), false);
  inbox.discard(topic);
  inbox.put(topic, big(9), false);
  inbox.put(topic, big(10), false);
  assert.equal((await inbox.next(topic)).payload[0], 9, "discard gave its bytes back too");
});
