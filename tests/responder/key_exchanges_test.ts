/**
 * lib/responder/key_exchanges.ts: the key-exchange worker, driven in-process with real keys, a
 * real identity and a publish that records what it is given (the connection is the seam; the
 * whole responder is tested on a real broker in tests/e2e/).
 */

import assert from "node:assert/strict";
import { Identity } from "../../lib/auth/identity.ts";
import { KeyExchangeVerifier } from "../../lib/auth/verifier.ts";
import {
  type DhKeyPair,
  encodePublicKeyDer,
  encodePublicKeyPem,
  generateKeyPair,
} from "../../lib/crypto/dh.ts";
import type { Fernet } from "../../lib/crypto/fernet.ts";
import { type Logger, RateLimitedLog } from "../../lib/log.ts";
import {
  loadLabGroup,
  readPeerPublicKey,
  SessionSecret,
} from "../../lib/protocol/key_agreement.ts";
import { KeyExchanges } from "../../lib/responder/key_exchanges.ts";

const group = loadLabGroup();
const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A KeyExchanges with everything it does recorded, and a way to wait for what it does. */
function worker(
  options: {
    identity?: Identity;
    capacity?: number;
    now?: () => number;
    onPublish?: (record: (event: string) => void) => void;
  } = {},
) {
  const sessions = new Map<string, Fernet>();
  const events: string[] = [];
  const published: { topic: string; payload: string; sessionStored: boolean }[] = [];
  const drops: [string, string][] = [];
  const lines: string[] = [];
  let wake: (() => void) | undefined;
  const record = (event: string) => {
    events.push(event);
    wake?.();
  };
  const logger: Logger = {
    debug: (m) => lines.push(`debug: ${m}`),
    info: (m) => lines.push(m),
    warn: (m) => lines.push(`warning: ${m}`),
  };
  const exchanges = new KeyExchanges({
    group,
    identity: options.identity,
    capacity: options.capacity ?? 16,
    maxWaitMs: 30_000,
    sessions,
    publish(topic, payload) {
      const netid = topic.split("/")[0];
      published.push({ topic, payload, sessionStored: sessions.has(netid) });
      record(`published ${topic}`);
      options.onPublish?.(record);
    },
    lines: new RateLimitedLog(logger, { burst: 100, perSecond: 1 }),
    drop(kind, message) {
      drops.push([kind, message]);
      record(`dropped ${kind}`);
    },
    now: options.now,
  });
  /** Resolves once `events` has `count` entries. */
  const until = async (count: number) => {
    while (events.length < count) await new Promise<void>((resolve) => (wake = resolve));
  };
  return { exchanges, sessions, events, published, drops, lines, until };
}

/** The client's side of an exchange: its Fernet, from its key pair and our published PEM. */
async function clientFernet(pair: DhKeyPair, pem: string): Promise<Fernet> {
  const y = readPeerPublicKey(group, encode(pem)).y;
  return await SessionSecret.agree(group, pair, y).labFernet();
}

function clientKey() {
  const pair = generateKeyPair(group);
  return { pair, pem: encodePublicKeyPem(group, pair.publicKey) };
}

Deno.test("a key exchange: the session is stored, then our key published; both sides agree", async () => {
  const { exchanges, sessions, published, lines, until } = worker();
  const client = clientKey();
  exchanges.offer("alice", encode(client.pem));
  assert.equal(exchanges.pending, 1);
  assert.ok(exchanges.isQueued("alice"));
  await until(1);
  assert.equal(exchanges.pending, 0);
  assert.equal(exchanges.completed, 1);
  assert.deepEqual(published.map((p) => [p.topic, p.sessionStored]), [
    ["alice/key-exchange/response", true],
  ]);
  // The client's side of the exchange reaches the same key as the stored session.
  const ours = await clientFernet(client.pair, published[0].payload);
  const token = await ours.encrypt("same key");
  assert.equal(decode(await sessions.get("alice")!.decrypt(token)), "same key");
  assert.match(lines.at(-1)!, /^session for alice ready in \d+\.\d ms \(queued \d+\.\d ms\)$/);
});

Deno.test("with an identity, step 2b follows step 2, and a client that trusts it accepts", async () => {
  const { identity } = await Identity.generate();
  const { exchanges, published, lines, until } = worker({ identity });
  const client = clientKey();
  exchanges.offer("bob", encode(client.pem));
  await until(2);
  assert.deepEqual(published.map((p) => p.topic), [
    "bob/key-exchange/response",
    "bob/key-exchange/signature",
  ]);
  assert.ok(published.every((p) => p.sessionStored));
  const verifier = new KeyExchangeVerifier(
    group,
    "bob",
    encodePublicKeyDer(group, client.pair.publicKey),
    new Set([identity.fingerprint]),
  );
  assert.equal(await verifier.offerKey(encode(published[0].payload)), undefined);
  const verified = await verifier.offerSignature(encode(published[1].payload));
  assert.equal(verified?.signedBy, identity.fingerprint);
  assert.match(lines.at(-1)!, /^session for bob ready \(signed\) in /);
});

Deno.test("a bad key is dropped on arrival, and never queued", () => {
  const { exchanges, drops } = worker();
  exchanges.offer("mallory", encode("not a key"));
  exchanges.offer("evil\u202egnp", encode("A".repeat(9000)));
  assert.equal(exchanges.pending, 0);
  assert.deepEqual(drops.map(([kind]) => kind), ["key", "key"]);
  assert.match(drops[0][1], /^key exchange for mallory dropped: peer public key is malformed/);
  assert.match(
    drops[1][1],
    /^key exchange for evil\\u202egnp dropped: .*9000 bytes is over the 8192-byte limit$/,
  );
});

Deno.test("a full queue drops new netids, and a repeat replaces its netid's waiting key", async () => {
  const { exchanges, drops, lines, published, until } = worker({ capacity: 2 });
  const first = clientKey();
  const second = clientKey();
  exchanges.offer("a", encode(first.pem));
  exchanges.offer("b", encode(first.pem));
  exchanges.offer("c", encode(first.pem));
  exchanges.offer("a", encode(second.pem)); // replaces a's key; a keeps its place
  assert.equal(exchanges.pending, 2);
  assert.deepEqual(drops, [["queue", "key exchange queue full (2 netids waiting): dropped c"]]);
  assert.ok(lines.includes("debug: key exchange for a replaced a queued one"));
  await until(3); // the drop, then a's and b's answers
  assert.deepEqual(published.map((p) => p.topic), [
    "a/key-exchange/response",
    "b/key-exchange/response",
  ]);
  // a was answered for its newest key: the first one's holder cannot open what a sends.
  const newest = await clientFernet(second.pair, published[0].payload);
  const oldest = await clientFernet(first.pair, published[0].payload);
  const token = await newest.encrypt("x");
  await assert.rejects(() => oldest.decrypt(token));
});

Deno.test("an exchange that waited too long is dropped unanswered", async () => {
  let now = 0;
  const { exchanges, published, drops, until } = worker({ now: () => now });
  exchanges.offer("late", encode(clientKey().pem));
  now = 30_000.5;
  await until(1);
  assert.deepEqual(drops, [["stale", "key exchange for late dropped: queued for 30000.5 ms"]]);
  assert.deepEqual(published, []);
  assert.equal(exchanges.completed, 0);
});

Deno.test("one exchange per macrotask: other work gets the loop between two of them", async () => {
  // While n1's answer goes out, the clock jumps far ahead, and a task queued then (a request
  // arriving, say) sets it back. Were n2 started in the same macrotask as n1, it would read the
  // jumped clock and be dropped as stale; it must start only after the task.
  let now = 0;
  let publishes = 0;
  const { exchanges, events, drops, until } = worker({
    now: () => now,
    onPublish(record) {
      if (publishes++ > 0) return;
      now = 1e9;
      setTimeout(() => {
        now = 0;
        record("task");
      }, 0);
    },
  });
  const key = encode(clientKey().pem);
  for (const netid of ["n1", "n2"]) exchanges.offer(netid, key);
  await until(3);
  assert.deepEqual(drops, []);
  assert.deepEqual(events, [
    "published n1/key-exchange/response",
    "task",
    "published n2/key-exchange/response",
  ]);
});

Deno.test("close forgets what waits and answers nothing more", async () => {
  const { exchanges, published, sessions } = worker();
  exchanges.offer("x", encode(clientKey().pem));
  await exchanges.close();
  assert.equal(exchanges.pending, 0);
  exchanges.offer("y", encode(clientKey().pem)); // after close: queued, never run
  await exchanges.close();
  assert.deepEqual(published, []);
  assert.equal(sessions.size, 0);
});
