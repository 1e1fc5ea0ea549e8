/**
 * The checks of what a client session is asked: each says why a value cannot be used, in
 * words that both `requestTransform`'s errors and the command line's usage errors use, or
 * `undefined` when it can.
 *
 * @module
 */

import { ACTIONS, isAction } from "../protocol/actions.ts";
import { MAX_MESSAGE_BYTES } from "../protocol/limits.ts";
import { topicLevelProblem } from "../protocol/topics.ts";

/** The shortest deadline a session takes, in milliseconds. */
export const MIN_TIMEOUT_MS = 1;
/** The longest deadline a session takes, in milliseconds: a day. */
export const MAX_TIMEOUT_MS = 86_400_000;

/**
 * Why `netid` cannot be a netid: it is one topic level of every topic the session uses.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { netidProblem } from "./options.ts";
 * assert.equal(netidProblem("le0nh4rt"), undefined);
 * assert.equal(netidProblem("a/b"), "must not contain '/'");
 * ```
 */
export function netidProblem(netid: string): string | undefined {
  return topicLevelProblem(netid);
}

/**
 * Why `action` is not one of {@linkcode ACTIONS}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { actionProblem } from "./options.ts";
 * assert.equal(actionProblem("reverse"), undefined);
 * assert.match(actionProblem("explode")!, /^invalid choice 'explode' \(choose from upper/);
 * ```
 */
export function actionProblem(action: string): string | undefined {
  return isAction(action)
    ? undefined
    : `invalid choice '${action}' (choose from ${ACTIONS.join(", ")})`;
}

/**
 * Why `message` is too large to send: over {@linkcode MAX_MESSAGE_BYTES} of UTF-8.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { messageProblem } from "./options.ts";
 * assert.equal(messageProblem("hi"), undefined);
 * assert.equal(
 *   messageProblem("x".repeat(1024 * 1024 + 1)),
 *   "1048577 bytes is over the 1048576-byte limit",
 * );
 * ```
 */
export function messageProblem(message: string): string | undefined {
  // A UTF-16 unit is at most 3 bytes of UTF-8: most messages need no encoding to be passed.
  if (message.length * 3 <= MAX_MESSAGE_BYTES) return undefined;
  const size = new TextEncoder().encode(message).length;
  return size > MAX_MESSAGE_BYTES
    ? `${size} bytes is over the ${MAX_MESSAGE_BYTES}-byte limit`
    : undefined;
}

/**
 * Why `clientId` cannot be an MQTT client ID: it must be a non-empty MQTT string (UTF-8, no
 * NUL, at most 65535 bytes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { clientIdProblem } from "./options.ts";
 * assert.equal(clientIdProblem("lab-pc-7"), undefined);
 * assert.equal(clientIdProblem(""), "must not be empty");
 * ```
 */
export function clientIdProblem(clientId: string): string | undefined {
  if (clientId === "") return "must not be empty";
  if (clientId.includes("\0")) return "must not contain NUL";
  if (!clientId.isWellFormed()) return "is not valid Unicode";
  if (new TextEncoder().encode(clientId).length > 0xffff) return "is longer than 65535 bytes";
  return undefined;
}

/**
 * Why `ms` cannot be a session's deadline: a number of milliseconds from
 * {@linkcode MIN_TIMEOUT_MS} to {@linkcode MAX_TIMEOUT_MS}. Not a NaN, which would end the
 * session at once, and not beyond a timer's range (about 24.8 days), which fires at once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { timeoutProblem } from "./options.ts";
 * assert.equal(timeoutProblem(10_000), undefined);
 * assert.equal(timeoutProblem(0), "must be from 1 to 86400000 ms");
 * ```
 */
export function timeoutProblem(ms: number): string | undefined {
  return ms >= MIN_TIMEOUT_MS && ms <= MAX_TIMEOUT_MS
    ? undefined
    : `must be from ${MIN_TIMEOUT_MS} to ${MAX_TIMEOUT_MS} ms`;
}
