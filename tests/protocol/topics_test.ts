/**
 * lib/protocol/topics.ts: topic names, topic-level checks (a netid is one level of at most
 * MAX_NETID_BYTES), and request-topic parsing.
 */

import assert from "node:assert/strict";
import {
  KEY_EXCHANGE,
  parseRequestTopic,
  requestTopic,
  responseTopic,
  signatureTopic,
  topicLevelProblem,
} from "../../lib/protocol/topics.ts";
import { MAX_NETID_BYTES } from "../../lib/protocol/limits.ts";
Deno.test("topics are <netid>/<action>/{request,response}, and the signature topic", () => {
  assert.equal(KEY_EXCHANGE, "key-exchange");
  assert.equal(requestTopic("alice", KEY_EXCHANGE), "alice/key-exchange/request");
  assert.equal(responseTopic("alice", KEY_EXCHANGE), "alice/key-exchange/response");
  assert.equal(requestTopic("alice", "uppercase"), "alice/uppercase/request");
  assert.equal(responseTopic("alice", "uppercase"), "alice/uppercase/response");
  assert.equal(signatureTopic("alice"), "alice/key-exchange/signature");
});

Deno.test("a netid must be one topic level: no separator, wildcard or NUL, not empty", () => {
  for (const good of ["alice_01", "ünï", "a.b-c", "🚀", " ", "x".repeat(MAX_NETID_BYTES)]) {
    assert.equal(topicLevelProblem(good), undefined, good);
  }
  assert.equal(topicLevelProblem(""), "must not be empty");
  const bad: [string, string][] = [
    ["a/b", "must not contain '/'"],
    ["/", "must not contain '/'"],
    ["a+", "must not contain '+'"],
    ["#", "must not contain '#'"],
    ["x\0y", "must not contain NUL"],
  ];
  for (const [value, problem] of bad) assert.equal(topicLevelProblem(value), problem, value);
});

Deno.test("a netid is at most MAX_NETID_BYTES bytes of UTF-8, not UTF-16 units", () => {
  const tooLong = `is too long (over ${MAX_NETID_BYTES} bytes)`;
  assert.equal(topicLevelProblem("x".repeat(MAX_NETID_BYTES + 1)), tooLong);
  // é is two bytes: 512 of them fill the limit exactly, one more is over it.
  assert.equal(topicLevelProblem("é".repeat(MAX_NETID_BYTES / 2)), undefined);
  assert.equal(topicLevelProblem("é".repeat(MAX_NETID_BYTES / 2) + "x"), tooLong);
  assert.equal(topicLevelProblem("🚀".repeat(MAX_NETID_BYTES / 4 + 1)), tooLong);
});

Deno.test("parseRequestTopic takes exactly three non-empty levels ending in request", () => {
  assert.deepEqual(parseRequestTopic("a/key-exchange/request"), {
    kind: "key-exchange",
    netid: "a",
  });
  assert.deepEqual(parseRequestTopic("a/upper/request"), {
    kind: "action",
    netid: "a",
    action: "upper",
  });
  assert.deepEqual(parseRequestTopic("ünï/title-case/request"), {
    kind: "action",
    netid: "ünï",
    action: "title-case",
  });
  const refused = [
    "a/b/c/request", // an extra level
    "a/uppercase/request/", // an empty extra level
    "/a/uppercase/request",
    "a/b/response",
    "a/key-exchange/signature",
    "/b/request", // empty netid
    "a//request", // empty action
    "//request",
    "a/request",
    "request",
    "",
  ];
  for (const t of refused) assert.equal(parseRequestTopic(t), undefined, t);
});
