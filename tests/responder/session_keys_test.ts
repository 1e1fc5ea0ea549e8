/**
 * lib/responder/session_keys.ts: which key of a session opens a request, with both ends of a
 * real exchange of the lab group (lib/protocol/key_agreement.ts `SessionSecret`). A bound token
 * opens under its own binding only: not under the lab key, and not under the other direction,
 * another action or another netid; a lab token at a signed session opens under the lab key.
 */

import assert from "node:assert/strict";
import { generateKeyPair } from "../../lib/crypto/dh.ts";
import { Fernet, InvalidToken } from "../../lib/crypto/fernet.ts";
import type { TokenBinding } from "../../lib/crypto/hkdf.ts";
import { loadLabGroup, SessionSecret } from "../../lib/protocol/key_agreement.ts";
import { SessionKeys } from "../../lib/responder/session_keys.ts";

const group = loadLabGroup();
const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Both ends of one exchange. */
function exchange() {
  const a = generateKeyPair(group), b = generateKeyPair(group);
  return {
    client: SessionSecret.agree(group, a, b.publicKey),
    responder: SessionSecret.agree(group, b, a.publicKey),
  };
}

const NETID = "le0nh4rt";
const REQUEST: TokenBinding = { direction: "request", netid: NETID, action: "uppercase" };

Deno.test("a bound token opens under its own binding only", async () => {
  const { client, responder } = exchange();
  const token = await (await client.boundFernet(REQUEST)).encrypt("transfer 100 to bob");
  // The other end derives the same key from its side of the exchange.
  assert.equal(
    decode(await (await responder.boundFernet(REQUEST)).decrypt(token)),
    "transfer 100 to bob",
  );
  const others: [string, Fernet][] = [
    ["the lab key", await responder.labFernet()],
    ["the other direction", await responder.boundFernet({ ...REQUEST, direction: "response" })],
    ["another action", await responder.boundFernet({ ...REQUEST, action: "reverse" })],
    ["another netid", await responder.boundFernet({ ...REQUEST, netid: "le0nh4rt2" })],
    ["another exchange", await exchange().responder.boundFernet(REQUEST)],
  ];
  for (const [what, fernet] of others) {
    await assert.rejects(fernet.decrypt(token), InvalidToken, what);
  }
  // And the lab key's token does not open under a bound key.
  const lab = await (await client.labFernet()).encrypt("lab");
  await assert.rejects((await responder.boundFernet(REQUEST)).decrypt(lab), InvalidToken);
});

Deno.test("a signed session: bound first, answered in kind; the lab key otherwise", async () => {
  const { client, responder } = exchange();
  const keys = SessionKeys.authenticated(NETID, responder);
  assert.equal(keys.authenticated, true);

  const request = await client.boundFernet(REQUEST);
  const opened = await keys.open("uppercase", encode(await request.encrypt("hi")));
  assert.deepEqual([decode(opened.plain), opened.bound], ["hi", true]);
  const answer = await opened.answerWith.encrypt("HI");
  const response = await client.boundFernet({ ...REQUEST, direction: "response" });
  assert.equal(decode(await response.decrypt(answer)), "HI");
  await assert.rejects(request.decrypt(answer), InvalidToken, "not a reflection of the request");

  const lab = await client.labFernet();
  const labOpened = await keys.open("uppercase", encode(await lab.encrypt("hi")));
  assert.deepEqual([decode(labOpened.plain), labOpened.bound], ["hi", false]);
  assert.equal(decode(await lab.decrypt(await labOpened.answerWith.encrypt("HI"))), "HI");

  // Moved from another action, or from another netid's binding: no key of the session opens it.
  for (
    const moved of [
      { ...REQUEST, action: "reverse" },
      { ...REQUEST, netid: "alice" },
      { ...REQUEST, direction: "response" },
    ] as const
  ) {
    const token = await (await client.boundFernet(moved)).encrypt("hi");
    await assert.rejects(keys.open("uppercase", encode(token)), InvalidToken);
  }
});

Deno.test("a signed session keeps at most KEPT derived keys, whatever the actions", async () => {
  const { client, responder } = exchange();
  const keys = SessionKeys.authenticated(NETID, responder);
  const actions = ["uppercase", "lowercase", "reverse", "shuffle", "random", "title-case"];
  for (const round of [1, 2]) {
    for (const action of actions) {
      const fernet = await client.boundFernet({ ...REQUEST, action });
      const opened = await keys.open(action, encode(await fernet.encrypt(`${action} ${round}`)));
      assert.equal(decode(opened.plain), `${action} ${round}`);
      assert.ok(keys.kept <= SessionKeys.KEPT, `${keys.kept} kept`);
    }
  }
  assert.equal(keys.kept, SessionKeys.KEPT);
});

Deno.test("a lab session: the one key both ways, and nothing bound", async () => {
  const { client, responder } = exchange();
  const keys = SessionKeys.lab(await responder.labFernet());
  assert.equal(keys.authenticated, false);
  const lab = await client.labFernet();
  const opened = await keys.open("reverse", encode(await lab.encrypt("abc")));
  assert.deepEqual([decode(opened.plain), opened.bound], ["abc", false]);
  assert.equal(decode(await lab.decrypt(await opened.answerWith.encrypt("cba"))), "cba");
  // A responder without an identity never signed: a bound token is not for it.
  const bound = await (await client.boundFernet({ ...REQUEST, action: "reverse" })).encrypt("x");
  await assert.rejects(keys.open("reverse", encode(bound)), InvalidToken);
  assert.equal(keys.kept, 0);
});
