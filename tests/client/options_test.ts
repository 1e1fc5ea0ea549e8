/** lib/client/options.ts: each check's verdict and words, at and past each bound. */

import assert from "node:assert/strict";
import {
  actionProblem,
  clientIdProblem,
  MAX_TIMEOUT_MS,
  messageProblem,
  MIN_TIMEOUT_MS,
  netidProblem,
  timeoutProblem,
} from "../../lib/client/options.ts";
import { ACTIONS } from "../../lib/protocol/actions.ts";
import { MAX_MESSAGE_BYTES, MAX_NETID_BYTES } from "../../lib/protocol/limits.ts";

Deno.test("netidProblem: one topic level, at most MAX_NETID_BYTES", () => {
  for (const ok of ["le0nh4rt", "a", "naïve", "x".repeat(MAX_NETID_BYTES)]) {
    assert.equal(netidProblem(ok), undefined, ok);
  }
  assert.equal(netidProblem(""), "must not be empty");
  assert.equal(netidProblem("a/b"), "must not contain '/'");
  assert.equal(netidProblem("a+"), "must not contain '+'");
  assert.equal(netidProblem("#"), "must not contain '#'");
  assert.equal(netidProblem("a\0"), "must not contain NUL");
  assert.equal(
    netidProblem("é".repeat(MAX_NETID_BYTES / 2 + 1)),
    `is too long (over ${MAX_NETID_BYTES} bytes)`,
  );
});

Deno.test("actionProblem: one of ACTIONS, exactly; the refusal lists them", () => {
  for (const action of ACTIONS) assert.equal(actionProblem(action), undefined, action);
  for (const bad of ["Uppercase", "title_case", "key-exchange", ""]) {
    assert.equal(actionProblem(bad), `invalid choice '${bad}' (choose from ${ACTIONS.join(", ")})`);
  }
});

Deno.test("messageProblem: at most MAX_MESSAGE_BYTES of UTF-8, counted as bytes", () => {
  assert.equal(messageProblem(""), undefined);
  assert.equal(messageProblem("x".repeat(MAX_MESSAGE_BYTES)), undefined);
  assert.equal(
    messageProblem("x".repeat(MAX_MESSAGE_BYTES + 1)),
    `${MAX_MESSAGE_BYTES + 1} bytes is over the ${MAX_MESSAGE_BYTES}-byte limit`,
  );
  // Fewer characters than the limit, more bytes: each "€" is 3 bytes, each "🚀" 4 (2 units).
  assert.equal(messageProblem("€".repeat(MAX_MESSAGE_BYTES / 4)), undefined);
  assert.equal(
    messageProblem("€".repeat(MAX_MESSAGE_BYTES / 2)),
    `${(MAX_MESSAGE_BYTES / 2) * 3} bytes is over the ${MAX_MESSAGE_BYTES}-byte limit`,
  );
  assert.equal(messageProblem("🚀".repeat(MAX_MESSAGE_BYTES / 4)), undefined);
  assert.match(messageProblem("🚀".repeat(MAX_MESSAGE_BYTES / 4 + 1))!, /^1048580 bytes is over/);
});

Deno.test("clientIdProblem: a non-empty MQTT string", () => {
  for (const ok of ["lab-pc-7", "x".repeat(0xffff), "🚀"]) {
    assert.equal(clientIdProblem(ok), undefined);
  }
  assert.equal(clientIdProblem(""), "must not be empty");
  assert.equal(clientIdProblem("a\0b"), "must not contain NUL");
  assert.equal(clientIdProblem("\ud800"), "is not valid Unicode");
  assert.equal(clientIdProblem("x".repeat(0x10000)), "is longer than 65535 bytes");
});

Deno.test("timeoutProblem: 1 ms to a day; NaN and infinities are refused", () => {
  for (const ok of [MIN_TIMEOUT_MS, 1.5, 10_000, MAX_TIMEOUT_MS]) {
    assert.equal(timeoutProblem(ok), undefined, String(ok));
  }
  for (const bad of [0, 0.999, -1, MAX_TIMEOUT_MS + 1, NaN, Infinity, -Infinity]) {
    assert.equal(timeoutProblem(bad), "must be from 1 to 86400000 ms", String(bad));
  }
});
