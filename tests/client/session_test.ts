/**
 * lib/client/session.ts in-process: `requestTransform` refuses what the command line refuses,
 * before it connects; and, against a scripted broker that plays the responder too, every way
 * out of the session while the PUBACK of the key exchange response is held: the answer (the
 * broker's next bytes release it), a refused key (sent before the DISCONNECT), the deadline and
 * the caller's abort (the socket closed at once, though our request is unacknowledged), the
 * broker going away (the usual one line). The whole exchange against real brokers and
 * responders is in tests/e2e/client_test.ts.
 */

import assert from "node:assert/strict";
import type { Packet } from "mqtt-packet";
import {
  ClientError,
  ClientOptionError,
  type ClientOptions,
  requestTransform,
} from "../../lib/client/session.ts";
import { MAX_MESSAGE_BYTES } from "../../lib/protocol/limits.ts";
import { encodePublicKeyPem, generateKeyPair } from "../../lib/crypto/dh.ts";
import {
  loadLabGroup,
  readPeerPublicKey,
  SessionSecret,
} from "../../lib/protocol/key_agreement.ts";
import { freePort } from "../../support/mosquitto.ts";
import {
  type PacketOf,
  type ScriptedBroker,
  type ScriptedPeer,
  startScriptedBroker,
} from "./scripted_broker.ts";

const group = loadLabGroup();
const AN_HOUR = 3_600_000;

// ---------------------------------------------------------------------------------------------
// Options

Deno.test("requestTransform refuses a bad option before it connects, in the command line's words", async () => {
  // Nothing listens on this port: a session that tried to connect would fail otherwise.
  const base: ClientOptions = {
    broker: { transport: "mqtt", host: "127.0.0.1", port: freePort() },
    netid: "alice",
    action: "reverse",
    message: "hi",
    timeoutMs: AN_HOUR,
    group,
  };
  const cases: [Partial<ClientOptions>, keyof ClientOptions, string][] = [
    [{ netid: "a/b" }, "netid", "must not contain '/'"],
    [{ netid: "" }, "netid", "must not be empty"],
    [{ netid: "x".repeat(1025) }, "netid", "is too long (over 1024 bytes)"],
    [{ action: "key-exchange" }, "action", "invalid choice 'key-exchange' (choose from "],
    [
      { message: "é".repeat(MAX_MESSAGE_BYTES / 2 + 1) },
      "message",
      `${MAX_MESSAGE_BYTES + 2} bytes is over the ${MAX_MESSAGE_BYTES}-byte limit`,
    ],
    [{ clientId: "" }, "clientId", "must not be empty"],
    [{ clientId: "a\0b" }, "clientId", "must not contain NUL"],
    [{ timeoutMs: 0 }, "timeoutMs", "must be from 1 to 86400000 ms"],
    [{ timeoutMs: NaN }, "timeoutMs", "must be from 1 to 86400000 ms"],
    [{ timeoutMs: 30 * 86_400_000 }, "timeoutMs", "must be from 1 to 86400000 ms"],
  ];
  for (const [change, option, problem] of cases) {
    const error = await requestTransform({ ...base, ...change }).catch((e) => e);
    assert.ok(error instanceof ClientOptionError, `${option}: ${error}`);
    assert.ok(error instanceof ClientError, "a ClientError, as every failure of a session");
    assert.equal(error.option, option);
    assert.ok(error.problem.startsWith(problem), `${error.problem} starts with ${problem}`);
    assert.equal(error.message, `${option}: ${error.problem}`);
  }
  // A message at the limit, in characters of more than one byte, is fine by the check.
  const atLimit = "€".repeat(Math.floor(MAX_MESSAGE_BYTES / 3));
  const error = await requestTransform({ ...base, message: atLimit, timeoutMs: 1 }).catch((e) => e);
  assert.ok(!(error instanceof ClientOptionError), String(error));
});

// ---------------------------------------------------------------------------------------------
// The session against a scripted broker

const NETID = "alice";
const KEY = `${NETID}/key-exchange/response`;
const REQUEST = `${NETID}/reverse/request`;
const ANSWER = `${NETID}/reverse/response`;
const KEY_ID = 1;

/**
 * Plays broker and responder up to the key exchange response: CONNACK, SUBACK, the PUBACK of
 * the key exchange request, then step 2 as a QoS 1 delivery with message ID {@linkcode KEY_ID}.
 * Returns the client's public key as it came.
 */
async function answerKeyExchange(peer: ScriptedPeer, payload: string): Promise<Uint8Array> {
  await peer.accept();
  const subscribe = await peer.expect("subscribe");
  peer.send({
    cmd: "suback",
    messageId: subscribe.messageId!,
    granted: subscribe.subscriptions.map(() => 1),
  });
  const request = await peer.expect("publish");
  assert.equal(request.topic, `${NETID}/key-exchange/request`);
  // The PUBACK, and something that makes the client answer: once that answer is here, the
  // session has seen its request acknowledged and armed its hold, before step 2 arrives.
  peer.send({ cmd: "puback", messageId: request.messageId }, delivery("unrelated/topic", 99));
  assert.equal((await peer.expect("puback")).messageId, 99);
  peer.send(delivery(KEY, KEY_ID, payload));
  return request.payload as Uint8Array;
}

function delivery(topic: string, messageId: number, payload = ""): PacketOf<"publish"> {
  return { cmd: "publish", topic, payload, qos: 1, messageId, retain: false, dup: false };
}

/** The responder's side of the key exchange: a key pair, its PEM, and the Fernet it agrees. */
function responderKey() {
  const pair = generateKeyPair(group);
  return {
    pem: encodePublicKeyPem(group, pair.publicKey),
    fernetWith: (clientPem: Uint8Array) =>
      SessionSecret.agree(group, pair, readPeerPublicKey(group, clientPem).y).labFernet(),
  };
}

/** The client's request, which must come before any PUBACK of step 2: it is held. */
async function heldUntilRequest(peer: ScriptedPeer): Promise<PacketOf<"publish">> {
  const request = await peer.expect("publish");
  assert.equal(request.topic, REQUEST, "our request, before step 2's PUBACK");
  return request;
}

function pubacks(packets: Packet[]): (number | undefined)[] {
  return packets.filter((p) => p.cmd === "puback").map((p) => p.messageId);
}

function session(broker: ClientOptions["broker"], extra: Partial<ClientOptions> = {}) {
  return requestTransform({
    broker,
    netid: NETID,
    action: "reverse",
    message: "stressed",
    timeoutMs: AN_HOUR,
    group,
    ...extra,
  });
}

/**
 * A session up to its request, acknowledged: the client then releases step 2's held PUBACK.
 * Returns the session's answer, the broker's side, the request and the responder's Fernet.
 */
async function upToTheRequest(scripted: ScriptedBroker) {
  const answer = session(scripted.broker);
  const peer = await scripted.connection();
  const responder = responderKey();
  const clientPem = await answerKeyExchange(peer, responder.pem);
  const request = await heldUntilRequest(peer);
  peer.send({ cmd: "puback", messageId: request.messageId });
  assert.equal((await peer.expect("puback")).messageId, KEY_ID, "released by those bytes");
  return { answer, peer, request, fernet: await responder.fernetWith(clientPem) };
}

Deno.test("the answer: step 2's PUBACK goes with the broker's PUBACK of our request", async () => {
  await using scripted = await startScriptedBroker();
  const { answer, peer, request, fernet } = await upToTheRequest(scripted);
  assert.equal(new TextDecoder().decode(await fernet.decrypt(request.payload)), "stressed");
  peer.send(delivery(ANSWER, 2, await fernet.encrypt("desserts")));
  assert.equal(await answer, "desserts");
  const rest = await peer.rest();
  assert.deepEqual(rest.map((p) => p.cmd), ["puback", "disconnect"], "a polite end");
});

Deno.test("a refused key: its PUBACK is sent before the DISCONNECT", async () => {
  await using scripted = await startScriptedBroker();
  const failed = session(scripted.broker).catch((e) => e);
  const peer = await scripted.connection();
  await answerKeyExchange(peer, "not a key");
  const error = await failed;
  assert.ok(error instanceof ClientError);
  assert.match(error.message, /^peer public key is malformed/);
  const rest = await peer.rest();
  assert.deepEqual(rest.map((p) => p.cmd), ["puback", "disconnect"]);
  assert.deepEqual(pubacks(rest), [KEY_ID]);
});

/**
 * Everything the client sent after its request, up to closing the socket: a forced end, since
 * the request is unacknowledged (a polite one would wait for its PUBACK forever). Step 2's
 * PUBACK is let go as the session ends, but MQTT.js's write of it is corked until the next
 * tick and the socket is closed first: no matter, a clean session's state goes with it.
 */
async function assertForcedEnd(peer: ScriptedPeer): Promise<void> {
  const rest = await peer.rest();
  assert.ok(!rest.some((p) => p.cmd === "disconnect"), JSON.stringify(rest));
  assert.ok(rest.every((p) => p.cmd === "puback" && p.messageId === KEY_ID));
}

Deno.test("the deadline while step 2's PUBACK is held: the one line, the socket closed", async () => {
  await using scripted = await startScriptedBroker();
  // Long enough for the exchange up to the request on a busy machine; the broker then never
  // acknowledges the request, so the hold waits for bytes that never come.
  const failed = session(scripted.broker, { timeoutMs: 2000 }).catch((e) => e);
  const peer = await scripted.connection();
  await answerKeyExchange(peer, responderKey().pem);
  await heldUntilRequest(peer);
  const error = await failed;
  assert.ok(error instanceof ClientError);
  assert.equal(error.message, `no answer on ${ANSWER} within 2 s`);
  await assertForcedEnd(peer);
});

Deno.test("the caller's abort while step 2's PUBACK is held: its reason, the socket closed", async () => {
  await using scripted = await startScriptedBroker();
  const caller = new AbortController();
  const failed = session(scripted.broker, { signal: caller.signal }).catch((e) => e);
  const peer = await scripted.connection();
  await answerKeyExchange(peer, responderKey().pem);
  await heldUntilRequest(peer);
  const reason = new Error("the caller gave up");
  caller.abort(reason);
  assert.equal(await failed, reason, "the signal's reason, as it is");
  await assertForcedEnd(peer);
});

Deno.test("a signal aborted before the session starts: its reason at once", async () => {
  await using scripted = await startScriptedBroker();
  const reason = new Error("aborted already");
  // An hour's deadline: a session that ignored the signal would wait for a CONNACK that never
  // comes (the scripted broker answers nothing unless told).
  const failed = session(scripted.broker, { signal: AbortSignal.abort(reason) });
  await assert.rejects(failed, (e) => e === reason);
});

Deno.test("the broker goes away while step 2's PUBACK is held: the usual one line", async () => {
  await using scripted = await startScriptedBroker();
  const failed = session(scripted.broker).catch((e) => e);
  const peer = await scripted.connection();
  await answerKeyExchange(peer, responderKey().pem);
  await heldUntilRequest(peer);
  peer.close();
  const error = await failed;
  assert.ok(error instanceof ClientError);
  assert.match(
    error.message,
    /^the broker at 127\.0\.0\.1:\d+ closed the connection: most likely another client/,
  );
});

Deno.test("a PUBLISH over the largest answer is skipped unread, and the answer still taken", async () => {
  await using scripted = await startScriptedBroker();
  const { answer, peer, fernet } = await upToTheRequest(scripted);
  // 5 MiB on the answer topic, over the client's limit (the largest answer, about 4 MiB): the
  // client's size guard skips the payload as it passes and hands MQTT.js a marker instead, so it
  // is acknowledged, fails to verify, and the session waits on for the genuine answer.
  const huge = delivery(ANSWER, 2, "A".repeat(5 * 1024 * 1024));
  peer.send(huge);
  assert.equal((await peer.expect("puback")).messageId, 2, "acknowledged, not kept");
  peer.send(delivery(ANSWER, 3, await fernet.encrypt("desserts")));
  assert.equal(await answer, "desserts");
});
