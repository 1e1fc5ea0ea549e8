/**
 * lib/responder/requests.ts: admission and answering of action requests, driven in-process with
 * a real Fernet and a publish that records what it is given (the connection is the seam; the
 * whole responder is tested on a real broker in tests/e2e/). Above all: the in-flight ticket is
 * released on every way out, and only once the answer is done with.
 */

import assert from "node:assert/strict";
import { Fernet, InvalidToken } from "../../lib/crypto/fernet.ts";
import { type Logger, RateLimitedLog } from "../../lib/log.ts";
import { MAX_MESSAGE_BYTES, MAX_PAYLOAD_BYTES } from "../../lib/protocol/limits.ts";
import type { InFlightLimits } from "../../lib/responder/in_flight.ts";
import { generateKeyPair } from "../../lib/crypto/dh.ts";
import { loadLabGroup, SessionSecret } from "../../lib/protocol/key_agreement.ts";
import { ActionRequests } from "../../lib/responder/requests.ts";
import { SessionKeys } from "../../lib/responder/session_keys.ts";

const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

interface Published {
  topic: string;
  payload: string;
  done: () => void;
}

const group = loadLabGroup();
/** Both ends of one exchange: what the client agreed, and the responder's side of it. */
const ends = (() => {
  const client = generateKeyPair(group), responder = generateKeyPair(group);
  return {
    client: SessionSecret.agree(group, client, responder.publicKey),
    responder: SessionSecret.agree(group, responder, client.publicKey),
  };
})();

/**
 * An ActionRequests with lab sessions for alice, bob and dave, a signed one for erin (whose
 * client's side is `ends.client`), and all it does recorded.
 */
async function desk(
  options: {
    inFlight?: Partial<InFlightLimits>;
    publish?: (p: Published) => void;
    queued?: boolean;
  } = {},
) {
  const fernet = await Fernet.create(crypto.getRandomValues(new Uint8Array(32)));
  const lab = SessionKeys.lab(fernet);
  const sessions = new Map([["alice", lab], ["bob", lab], ["dave", lab]]);
  sessions.set("erin", SessionKeys.authenticated("erin", ends.responder));
  const drops: [string, string][] = [];
  const lines: string[] = [];
  const published: Published[] = [];
  const waiting: ((p: Published) => void)[] = [];
  const logger: Logger = {
    debug: (m) => lines.push(`debug: ${m}`),
    info: (m) => lines.push(m),
    warn: (m) => lines.push(`warning: ${m}`),
  };
  const requests = new ActionRequests({
    sessions,
    keyExchangeQueued: () => options.queued ?? false,
    inFlight: {
      requests: 100,
      bytes: 100 * 1024 * 1024,
      requestsPerNetid: 100,
      bytesPerNetid: 100 * 1024 * 1024,
      ...options.inFlight,
    },
    publish(topic, payload, done) {
      const p = { topic, payload, done };
      options.publish?.(p);
      published.push(p);
      waiting.shift()?.(p);
    },
    lines: new RateLimitedLog(logger, { burst: 100, perSecond: 1 }),
    drop: (kind, message) => drops.push([kind, message]),
  });
  /** The next publish (or the one already made and not yet taken). */
  let taken = 0;
  const nextPublish = (): Promise<Published> => {
    if (published.length > taken) return Promise.resolve(published[taken++]);
    return new Promise((resolve) => waiting.push((p) => (taken++, resolve(p))));
  };
  return { requests, fernet, drops, lines, published, nextPublish };
}

Deno.test("an answered request holds its ticket until the publish is done, then releases it", async () => {
  const { requests, fernet, drops, lines, nextPublish } = await desk();
  const token = encode(await fernet.encrypt("hello"));
  requests.handle("alice", "uppercase", token);
  assert.equal(requests.inFlight, 1); // admitted at once, before any await
  assert.equal(requests.bytesInFlight, 3 * token.length); // itself and twice it for the answer
  const published = await nextPublish();
  assert.equal(published.topic, "alice/uppercase/response");
  assert.equal(decode(await fernet.decrypt(published.payload)), "HELLO");
  // Resized to the real sizes, and still held: the broker has not acknowledged the answer.
  assert.equal(requests.inFlight, 1);
  assert.equal(requests.bytesInFlight, token.length + published.payload.length);
  assert.equal(requests.answered, 1);
  assert.match(lines.at(-1)!, /^answered alice\/uppercase \(5 bytes\) in \d+\.\d ms$/);
  published.done();
  await requests.settled();
  assert.equal(requests.inFlight, 0);
  assert.equal(requests.bytesInFlight, 0);
  assert.deepEqual(drops, []);
});

Deno.test("dropped at admission, holding nothing: too big, no session, over a share or the budget", async () => {
  const { requests, fernet, drops, nextPublish } = await desk({
    inFlight: { requests: 2, requestsPerNetid: 1 },
  });
  const token = encode(await fernet.encrypt("x"));
  requests.handle("alice", "reverse", new Uint8Array(MAX_PAYLOAD_BYTES + 1));
  requests.handle("nobody", "reverse", token);
  requests.handle("alice", "reverse", token); // admitted: alice's one request
  requests.handle("alice", "reverse", token); // over her share
  requests.handle("bob", "reverse", token); // admitted: the budget's second
  requests.handle("dave", "lowercase", token); // within dave's share, but the budget is full
  assert.equal(requests.inFlight, 2);
  assert.deepEqual(drops, [
    [
      "size",
      `reverse request for alice dropped: ${MAX_PAYLOAD_BYTES + 1} bytes is over the ` +
      `${MAX_PAYLOAD_BYTES}-byte limit`,
    ],
    ["session", "reverse request for nobody dropped: no session"],
    [
      "share",
      "reverse request for alice dropped: alice already has requests being answered up to its " +
      `share (1 requests, ${100 * 1024 * 1024} bytes)`,
    ],
    [
      "full",
      "lowercase request for dave dropped: no room in the in-flight budget (2 requests, " +
      `${6 * token.length} of ${100 * 1024 * 1024} bytes in flight)`,
    ],
  ]);
  // The two admitted are answered, and release their tickets once acknowledged.
  (await nextPublish()).done();
  (await nextPublish()).done();
  await requests.settled();
  assert.equal(requests.inFlight, 0);
  assert.equal(requests.bytesInFlight, 0);
});

Deno.test("a request with no session says when its key exchange is still queued", async () => {
  const { requests, fernet, drops } = await desk({ queued: true });
  requests.handle("carol", "shuffle", encode(await fernet.encrypt("x")));
  assert.deepEqual(drops, [
    ["session", "shuffle request for carol dropped: no session (its key exchange is still queued)"],
  ]);
  assert.equal(requests.inFlight, 0);
});

Deno.test("dropped after admission: an invalid token, a message not UTF-8 or too long", async () => {
  const { requests, fernet, drops, published } = await desk();
  const other = await Fernet.create(crypto.getRandomValues(new Uint8Array(32)));
  // What a token of another key most likely means, said where an operator reads it.
  const invalid = "invalid token (most likely its client agreed its key with another responder " +
    "on this broker, which answers the same netids, or it is of another session of this netid)";
  const cases: [Uint8Array, string, string][] = [
    [encode("not a token"), "token", invalid],
    [encode(await other.encrypt("another key")), "token", invalid],
    [
      encode(await fernet.encrypt(new Uint8Array([0x68, 0xff]))),
      "text",
      "the message is not UTF-8",
    ],
    [
      encode(await fernet.encrypt("a".repeat(MAX_MESSAGE_BYTES + 1))),
      "text",
      "the message is over the size limit",
    ],
  ];
  for (const [token] of cases) requests.handle("alice", "reverse", token);
  assert.equal(requests.inFlight, cases.length);
  await requests.settled();
  assert.equal(requests.inFlight, 0);
  assert.equal(requests.bytesInFlight, 0);
  // In any order: each decryption takes its own time.
  assert.deepEqual(
    drops.toSorted(),
    cases.map(([, kind, why]) => [kind, `reverse request for alice dropped: ${why}`]).toSorted(),
  );
  assert.deepEqual(published, []);
  assert.equal(requests.answered, 0);
});

Deno.test("a publish that throws is a bug: logged as one, and the ticket is released", async () => {
  const { requests, fernet, drops } = await desk({
    publish() {
      throw new Error("the connection broke\nin two lines");
    },
  });
  requests.handle("alice", "lowercase", encode(await fernet.encrypt("ABC")));
  await requests.settled();
  assert.equal(requests.inFlight, 0);
  assert.deepEqual(drops, [["bug", "lowercase request for alice failed: the connection broke"]]);
});

Deno.test("closed while decrypting: nothing is published, and the ticket is released", async () => {
  const { requests, fernet, published } = await desk();
  requests.handle("alice", "uppercase", encode(await fernet.encrypt("late")));
  assert.equal(requests.inFlight, 1);
  await requests.close(); // the answer is still being decrypted when this starts
  assert.equal(requests.inFlight, 0);
  assert.deepEqual(published, []);
  assert.equal(requests.answered, 0);
});

Deno.test("close waits for an answer already published until its publish is done", async () => {
  const { requests, fernet, nextPublish } = await desk();
  requests.handle("alice", "reverse", encode(await fernet.encrypt("abc")));
  const published = await nextPublish();
  let closed = false;
  const closing = requests.close().then(() => (closed = true));
  // A macrotask later every microtask has run: had close() not waited for the publish's end
  // (which, in the responder, closing the connection brings), it would have resolved by now.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(closed, false);
  assert.equal(requests.inFlight, 1);
  published.done();
  await closing;
  assert.equal(requests.inFlight, 0);
});

Deno.test("a publish lost at once (not connected) releases the ticket at once", async () => {
  const { requests, fernet } = await desk({ publish: (p) => p.done() });
  for (let i = 0; i < 3; i++) {
    requests.handle("alice", "reverse", encode(await fernet.encrypt(`lost ${i}`)));
  }
  await requests.settled();
  assert.equal(requests.inFlight, 0);
  assert.equal(requests.answered, 3);
});

Deno.test("a signed session: bound requests answered bound, lab ones under the lab key", async () => {
  const { requests, nextPublish, lines } = await desk();
  const bound = (direction: "request" | "response", action: string, netid = "erin") =>
    ends.client.boundFernet({ direction, netid, action });

  requests.handle(
    "erin",
    "uppercase",
    encode(await (await bound("request", "uppercase")).encrypt("hi")),
  );
  const answer = await nextPublish();
  assert.equal(answer.topic, "erin/uppercase/response");
  assert.equal(decode(await (await bound("response", "uppercase")).decrypt(answer.payload)), "HI");
  // Under its own key only: not the lab key, and not the request's.
  const lab = await ends.client.labFernet();
  await assert.rejects(lab.decrypt(answer.payload), InvalidToken);
  await assert.rejects((await bound("request", "uppercase")).decrypt(answer.payload), InvalidToken);
  assert.match(lines.at(-1)!, /^answered erin\/uppercase \(2 bytes, bound tokens\) in /);

  // A lab client of the same session (it did not check the signature): the lab key both ways.
  requests.handle("erin", "reverse", encode(await lab.encrypt("abc")));
  const labAnswer = await nextPublish();
  assert.equal(decode(await lab.decrypt(labAnswer.payload)), "cba");
  assert.match(lines.at(-1)!, /^answered erin\/reverse \(3 bytes\) in /);
});

Deno.test("a signed session drops a bound token moved to another action, direction or netid", async () => {
  const { requests, drops, published } = await desk();
  const bound = (direction: "request" | "response", netid: string, action: string) =>
    ends.client.boundFernet({ direction, netid, action });
  const moved = [
    await bound("request", "erin", "uppercase"), // moved from uppercase to reverse
    await bound("response", "erin", "reverse"), // an answer sent back as a request
    await bound("request", "mallory", "reverse"), // bound to another netid
  ];
  for (const fernet of moved) {
    requests.handle("erin", "reverse", encode(await fernet.encrypt("transfer 100 to bob")));
  }
  await requests.settled();
  assert.equal(drops.length, moved.length);
  for (const [kind, line] of drops) {
    assert.equal(kind, "token");
    assert.match(line, /^reverse request for erin dropped: invalid token \(/);
  }
  assert.deepEqual(published, []);
});
