/**
 * The responder's resource limits and timings: what they are ({@linkcode ResponderLimits}),
 * their defaults ({@linkcode DEFAULT_LIMITS}, the one place they are written), and the check
 * that a caller's overrides make sense ({@linkcode checkLimits}), so that a bad one is refused
 * with one line naming it, before any part is built on it.
 *
 * @module
 */

/** Resource limits and timings; the defaults are {@linkcode DEFAULT_LIMITS}. */
export interface ResponderLimits {
  /** Most live sessions (one per netid); the least recently used is evicted beyond it. */
  maxSessions: number;
  /** A session unused for this long is forgotten, and its key with it. */
  sessionIdleMs: number;
  /** Most netids waiting for a key exchange; new ones beyond it are dropped. */
  maxPendingKeyExchanges: number;
  /** A key exchange that waited longer than this is dropped unanswered: its client is gone. */
  maxKeyExchangeWaitMs: number;
  /** Most requests in flight, from admission to the broker's PUBACK of the answer. */
  maxRequestsInFlight: number;
  /** Most bytes in flight (each request counts its own size and its answer's). */
  maxBytesInFlight: number;
  /** Most requests in flight for one netid: its share of {@linkcode maxRequestsInFlight}. */
  maxRequestsInFlightPerNetid: number;
  /** Most bytes in flight for one netid: its share of {@linkcode maxBytesInFlight}. */
  maxBytesInFlightPerNetid: number;
  /** First reconnect delay; doubles per failed attempt up to `reconnectMaxMs`. */
  reconnectMinMs: number;
  /** Cap of the reconnect delay. */
  reconnectMaxMs: number;
  /** MQTT keepalive: how soon a silently dead broker connection is noticed (~1.5x this). */
  keepAliveSeconds: number;
  /** A connection whose CONNACK has not come within this is given up, and tried again. */
  connackTimeoutMs: number;
  /** A connection whose SUBACK has not come within this is given up, and tried again. */
  subackTimeoutMs: number;
  /** Log lines of one kind allowed in a burst before rate limiting starts. */
  logBurst: number;
  /** Log lines of one kind per second after a burst. */
  logLinesPerSecond: number;
}

/** The defaults, written here only; docs/security.md explains each. */
export const DEFAULT_LIMITS: Readonly<ResponderLimits> = Object.freeze({
  // A session is ~10 KiB of resident memory (docs/performance.md): 2,000 are ~20 MiB.
  maxSessions: 2_000,
  sessionIdleMs: 10 * 60_000,
  // A key exchange costs ~7 ms: 1,024 waiting are ~7 s of work, inside the wait below.
  maxPendingKeyExchanges: 1024,
  maxKeyExchangeWaitMs: 30_000,
  maxRequestsInFlight: 256,
  maxBytesInFlight: 32 * 1024 * 1024,
  maxRequestsInFlightPerNetid: 16,
  maxBytesInFlightPerNetid: 4 * 1024 * 1024,
  // Jittered (see backoffDelay): after 0.5 s at first, doubling to 30 s.
  reconnectMinMs: 500,
  reconnectMaxMs: 30_000,
  keepAliveSeconds: 30,
  // A broker answers a CONNECT or a SUBSCRIBE in milliseconds; one that has not in 10 s froze.
  connackTimeoutMs: 10_000,
  subackTimeoutMs: 10_000,
  logBurst: 20,
  logLinesPerSecond: 2,
});

/** What a limit may be: a count (a whole number) or a measure, and its largest value. */
interface Rule {
  whole: boolean;
  max?: number;
  why?: string;
}

const COUNT: Rule = { whole: true };
const MEASURE: Rule = { whole: false };
// setTimeout waits at most 2^31 - 1 ms; beyond it, the delay overflows and fires at once.
const TIMER: Rule = { whole: false, max: 2 ** 31 - 1, why: "the longest a timer can wait" };

const RULES: Record<keyof ResponderLimits, Rule> = {
  // Counts that the session cache, the key-exchange queue and the in-flight budget rely on
  // being whole (the first two throw a RangeError otherwise); bytes are counted whole too.
  maxSessions: COUNT,
  sessionIdleMs: MEASURE,
  maxPendingKeyExchanges: COUNT,
  maxKeyExchangeWaitMs: MEASURE,
  maxRequestsInFlight: COUNT,
  maxBytesInFlight: COUNT,
  maxRequestsInFlightPerNetid: COUNT,
  maxBytesInFlightPerNetid: COUNT,
  reconnectMinMs: TIMER,
  reconnectMaxMs: TIMER,
  // The CONNECT packet carries it as a 16-bit number of seconds.
  keepAliveSeconds: { whole: true, max: 65_535, why: "MQTT's largest keepalive" },
  connackTimeoutMs: TIMER,
  subackTimeoutMs: TIMER,
  logBurst: COUNT,
  logLinesPerSecond: MEASURE,
};

/**
 * Why `limits` cannot be used, as one line naming the limit, or `undefined` when they can.
 * Each limit must be a number above 0 and finite, a whole one where it counts something, and
 * within what it feeds (a timer, the MQTT keepalive); `reconnectMaxMs` must not be below
 * `reconnectMinMs`; a name that is no limit is refused (a typo would otherwise be ignored).
 *
 * A netid's share above the total is allowed: the total then binds first, and the share never
 * does, which is what such a setting asks for.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkLimits, DEFAULT_LIMITS } from "./limits.ts";
 * assert.equal(checkLimits(DEFAULT_LIMITS), undefined);
 * assert.equal(
 *   checkLimits({ ...DEFAULT_LIMITS, maxSessions: 1.5 }),
 *   "invalid limit maxSessions: 1.5 (a whole number above 0)",
 * );
 * ```
 */
export function checkLimits(limits: Readonly<Record<string, unknown>>): string | undefined {
  for (const [name, value] of Object.entries(limits)) {
    const rule: Rule | undefined = Object.hasOwn(RULES, name)
      ? RULES[name as keyof ResponderLimits]
      : undefined;
    if (rule === undefined) return `unknown limit ${printableName(name)}`;
    const number = typeof value === "number" && value > 0 && Number.isFinite(value);
    if (!number || (rule.whole && !Number.isInteger(value))) {
      const kind = rule.whole ? "a whole number above 0" : "a finite number above 0";
      return `invalid limit ${name}: ${describe(value)} (${kind})`;
    }
    if (rule.max !== undefined && value > rule.max) {
      return `invalid limit ${name}: ${value} (at most ${rule.max}, ${rule.why})`;
    }
  }
  for (const name of Object.keys(RULES)) {
    if (!Object.hasOwn(limits, name)) return `missing limit ${name}`;
  }
  const { reconnectMinMs, reconnectMaxMs } = limits as unknown as ResponderLimits;
  if (reconnectMaxMs < reconnectMinMs) {
    return `invalid limits: reconnectMaxMs (${reconnectMaxMs}) is below reconnectMinMs ` +
      `(${reconnectMinMs})`;
  }
  return undefined;
}

/** A value as a limit's message shows it: numbers as written, anything else by its type. */
function describe(value: unknown): string {
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return JSON.stringify(value.slice(0, 40));
  if (typeof value === "bigint") return `${value}n`;
  return value === null ? "null" : typeof value;
}

/** A caller's key, cut and escaped, since it ends up in an error line. */
function printableName(name: string): string {
  return JSON.stringify(name.slice(0, 40));
}
