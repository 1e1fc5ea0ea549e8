/**
 * What one responder session costs in memory: `sessions` of them held as lib/responder/responder.ts
 * holds them (a `SessionCache` of `Fernet`s, one per netid), V8's heap, the
 * memory V8 accounts outside it (the key bytes behind each `CryptoKey`) and the process's RSS
 * measured before and after, each time after a full GC. Prints one JSON object of bytes per
 * session; `bench/bench.ts` runs it with the responder task's flags.
 *
 *     deno run --v8-flags=--expose-gc bench/session_memory.ts [sessions]
 *
 * `sessions` defaults to the responder's cap, `DEFAULT_LIMITS.maxSessions`.
 *
 * @module
 */

import { Fernet } from "../lib/crypto/fernet.ts";
import { DEFAULT_LIMITS } from "../lib/responder/limits.ts";
import { SessionCache } from "../lib/responder/session_cache.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error("session_memory.ts: run it with --v8-flags=--expose-gc");
  Deno.exit(2);
}
const sessions = Number(Deno.args[0] ?? DEFAULT_LIMITS.maxSessions);

/** Sessions for `count` netids, each with its own random key, as a key exchange leaves them. */
async function fill(count: number): Promise<SessionCache<Fernet>> {
  const cache = new SessionCache<Fernet>({
    maxEntries: count,
    idleMs: DEFAULT_LIMITS.sessionIdleMs,
  });
  for (let i = 0; i < count; i++) {
    const key = crypto.getRandomValues(new Uint8Array(32));
    cache.set(`netid-${i}`, await Fernet.create(key));
  }
  return cache;
}

function usage(): Deno.MemoryUsage {
  gc!();
  gc!();
  return Deno.memoryUsage();
}

// Once first and dropped: Web Crypto's and the cache's code paths loaded and compiled, so the
// difference below is the sessions themselves.
(await fill(100)).clear();
const before = usage();
const cache = await fill(sessions);
const after = usage();
if (cache.size !== sessions) throw new Error(`held ${cache.size} sessions, not ${sessions}`);
const each = (key: keyof Deno.MemoryUsage) => Math.round((after[key] - before[key]) / sessions);
console.log(JSON.stringify({
  sessions,
  maxSessions: DEFAULT_LIMITS.maxSessions,
  heapBytes: each("heapUsed"),
  externalBytes: each("external"),
  rssBytes: each("rss"),
}));
