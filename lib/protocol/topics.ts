/**
 * Topic names (docs/protocol.md, "Topics"): each request and response is
 * `<netid>/<action>/request|response`, the key exchange uses the pseudo-action
 * {@linkcode KEY_EXCHANGE}, and the authenticated extension adds `<netid>/key-exchange/signature`.
 *
 * @module
 */

import { MAX_NETID_BYTES } from "./limits.ts";

/** The pseudo-action whose topics carry the Diffie-Hellman public keys. */
export const KEY_EXCHANGE = "key-exchange";

/**
 * Why `value` cannot be one MQTT topic level, or `undefined` when it can. Wildcards and the
 * separator would change which topics a subscription matches; MQTT itself forbids NUL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { topicLevelProblem } from "./topics.ts";
 * assert.equal(topicLevelProblem("alice"), undefined);
 * assert.equal(topicLevelProblem("a/b"), "must not contain '/'");
 * ```
 */
export function topicLevelProblem(value: string): string | undefined {
  if (value.length === 0) return "must not be empty";
  for (const forbidden of ["/", "+", "#", "\0"]) {
    if (value.includes(forbidden)) {
      return `must not contain ${forbidden === "\0" ? "NUL" : `'${forbidden}'`}`;
    }
  }
  if (new TextEncoder().encode(value).length > MAX_NETID_BYTES) {
    return `is too long (over ${MAX_NETID_BYTES} bytes)`;
  }
  return undefined;
}

/** `<netid>/<action>/request`; `action` may be {@linkcode KEY_EXCHANGE}. */
export function requestTopic(netid: string, action: string): string {
  return `${netid}/${action}/request`;
}

/** `<netid>/<action>/response`; `action` may be {@linkcode KEY_EXCHANGE}. */
export function responseTopic(netid: string, action: string): string {
  return `${netid}/${action}/response`;
}

/** `<netid>/key-exchange/signature`: step 2b of the authenticated extension. */
export function signatureTopic(netid: string): string {
  return `${netid}/${KEY_EXCHANGE}/signature`;
}

/** A request topic taken apart; see {@linkcode parseRequestTopic}. */
export type RequestTopic =
  | { kind: "key-exchange"; netid: string }
  | { kind: "action"; netid: string; action: string };

/**
 * Splits a topic the responder received; `undefined` for anything that is not exactly
 * `<netid>/<x>/request` with non-empty levels. An unknown action is returned as it is, so that
 * the caller can name it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRequestTopic } from "./topics.ts";
 * assert.deepEqual(parseRequestTopic("alice/reverse/request"), {
 *   kind: "action",
 *   netid: "alice",
 *   action: "reverse",
 * });
 * assert.equal(parseRequestTopic("alice/reverse/request/x"), undefined);
 * ```
 */
export function parseRequestTopic(topic: string): RequestTopic | undefined {
  const levels = topic.split("/");
  if (levels.length !== 3 || levels[2] !== "request") return undefined;
  const [netid, action] = levels;
  if (netid === "" || action === "") return undefined;
  if (action === KEY_EXCHANGE) return { kind: "key-exchange", netid };
  return { kind: "action", netid, action };
}
