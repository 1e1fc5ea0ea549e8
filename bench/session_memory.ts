/**
 * What one responder session costs in memory: `sessions` of them held as
 * lib/responder/responder.ts holds them (a `SessionCache` of `SessionKeys`, one per netid), V8's
 * heap, the memory V8 accounts outside it (the key bytes behind each `CryptoKey`) and the
 * process's RSS measured before and after, each time after a full GC. Prints one JSON object of
 * bytes per session; `bench/bench.ts` runs it with the responder task's flags, once per kind:
 *
 * - `lab`: a responder without an identity: the lab key's Fernet.
 * - `signed`: a responder with an identity, after the key exchange: the shared secret Z.
 * - `answered`: the same after a bound request and its answer: Z and the two Fernets it
 *   derived and keeps (`SessionKeys.KEPT`), the most a session holds.
 *
 *     deno run --v8-flags=--expose-gc bench/session_memory.ts [--kind KIND] [sessions]
 *
 * `sessions` defaults to the responder's cap, `DEFAULT_LIMITS.maxSessions`; `KIND` to `lab`.
 *
 * The RSS of a kind that did work to get there (`answered`: HKDF, Web Crypto imports, a
 * decryption and an encryption per session) counts the allocator's pages that work touched,
 * which stay with the process: a lab session made with the same work measures as much. What the
 * sessions themselves keep is the heap and external memory.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Fernet } from "../lib/crypto/fernet.ts";
import { loadLabGroup, SessionSecret } from "../lib/protocol/key_agreement.ts";
import { DEFAULT_LIMITS } from "../lib/responder/limits.ts";
import { SessionCache } from "../lib/responder/session_cache.ts";
import { SessionKeys } from "../lib/responder/session_keys.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error("session_memory.ts: run it with --v8-flags=--expose-gc");
  Deno.exit(2);
}
const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { kind: { type: "string", default: "lab" } },
  allowPositionals: true,
});
const sessions = Number(positionals[0] ?? DEFAULT_LIMITS.maxSessions);
const kind = values.kind;
if (!["lab", "signed", "answered"].includes(kind)) {
  console.error(`session_memory.ts: kind must be lab, signed or answered, not ${kind}`);
  Deno.exit(2);
}
const group = loadLabGroup();
const PEER_Y = 8n;

/** A session's secret: a full 512-byte Z, from a short exponent only to make 2,000 quickly. */
function secret(): SessionSecret {
  const x = crypto.getRandomValues(new BigUint64Array(1))[0] | 1n << 63n;
  return SessionSecret.agree(group, { privateKey: x, publicKey: 0n }, PEER_Y);
}

/** A session of `kind` for `netid`, as a key exchange (and a request) leave it. */
async function session(netid: string): Promise<SessionKeys> {
  if (kind === "lab") {
    return SessionKeys.lab(await Fernet.create(crypto.getRandomValues(new Uint8Array(32))));
  }
  const responder = secret();
  const keys = SessionKeys.authenticated(netid, responder);
  if (kind === "answered") {
    // The client's side is the same secret here: what matters is what the session keeps.
    const binding = { netid, action: "uppercase" } as const;
    const token = await (await responder.boundFernet({ direction: "request", ...binding }))
      .encrypt("hi");
    await (await keys.open("uppercase", token)).answerWith.encrypt("HI");
  }
  return keys;
}

/** Sessions for `count` netids, each with its own random key, as a key exchange leaves them. */
async function fill(count: number): Promise<SessionCache<SessionKeys>> {
  const cache = new SessionCache<SessionKeys>({
    maxEntries: count,
    idleMs: DEFAULT_LIMITS.sessionIdleMs,
  });
  for (let i = 0; i < count; i++) cache.set(`netid-${i}`, await session(`netid-${i}`));
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
  kind,
  sessions,
  maxSessions: DEFAULT_LIMITS.maxSessions,
  heapBytes: each("heapUsed"),
  externalBytes: each("external"),
  rssBytes: each("rss"),
}));
