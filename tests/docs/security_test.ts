/**
 * docs/security.md, "Limits": the table of the responder's limits says what the code does. Each
 * row's numbers, in order, are the defaults (`DEFAULT_LIMITS`, and the protocol's size limits)
 * written as a reader reads them; every default has a row, and every row is checked.
 */

import assert from "node:assert/strict";
import {
  MAX_MESSAGE_BYTES,
  MAX_PAYLOAD_BYTES,
  MAX_PUBLIC_KEY_PEM_BYTES,
} from "../../lib/protocol/limits.ts";
import { DEFAULT_LIMITS, type ResponderLimits } from "../../lib/responder/responder.ts";

const ROOT = new URL("../../", import.meta.url);
const doc = await Deno.readTextFile(new URL("docs/security.md", ROOT));

/** The `| what | limit |` rows of the table under `### Limits`. */
function limitsTable(): Map<string, string> {
  const section = /^### Limits\n([\s\S]*?)(?=^#{1,3} )/m.exec(doc)?.[1];
  assert.ok(section, "docs/security.md has a ### Limits section");
  const rows = section.split("\n").filter((line) => line.startsWith("|")).slice(2); // header, rule
  assert.ok(rows.length > 0, "the Limits section has a table");
  return new Map(rows.map((row) => {
    const cells = row.split("|").slice(1, -1).map((cell) => cell.trim());
    assert.equal(cells.length, 2, row);
    return [cells[0], cells[1]];
  }));
}

/** The numbers of a cell, with their units: "2,000", "0.5 s", "32 MiB". */
function numbersIn(cell: string): string[] {
  return cell.match(/\d+(?:,\d{3})*(?:\.\d+)?(?: (?:MiB|KiB|min|s)\b)?/g) ?? [];
}

const count = (n: number) => n.toLocaleString("en-US");
const duration = (ms: number) => ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`;
const size = (bytes: number) =>
  bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes / 1024} KiB`;

/** Each row: the limits it states, and how the table writes them, in order. */
const ROWS: Record<string, { limits: (keyof ResponderLimits)[]; numbers: string[] }> = {
  "live sessions": { limits: ["maxSessions"], numbers: [count(DEFAULT_LIMITS.maxSessions)] },
  "session idle expiry": {
    limits: ["sessionIdleMs"],
    numbers: [duration(DEFAULT_LIMITS.sessionIdleMs)],
  },
  "netids waiting for a key exchange": {
    limits: ["maxPendingKeyExchanges"],
    numbers: [count(DEFAULT_LIMITS.maxPendingKeyExchanges)],
  },
  "wait of a key exchange": {
    limits: ["maxKeyExchangeWaitMs"],
    numbers: [duration(DEFAULT_LIMITS.maxKeyExchangeWaitMs)],
  },
  // Not a setting: the responder's key-exchange worker takes one per event-loop turn.
  "key exchanges at a time": { limits: [], numbers: [] },
  "requests in flight": {
    limits: [
      "maxRequestsInFlight",
      "maxBytesInFlight",
      "maxRequestsInFlightPerNetid",
      "maxBytesInFlightPerNetid",
    ],
    numbers: [
      count(DEFAULT_LIMITS.maxRequestsInFlight),
      size(DEFAULT_LIMITS.maxBytesInFlight),
      count(DEFAULT_LIMITS.maxRequestsInFlightPerNetid),
      size(DEFAULT_LIMITS.maxBytesInFlightPerNetid),
    ],
  },
  "log lines of one kind": {
    limits: ["logBurst", "logLinesPerSecond"],
    numbers: [count(DEFAULT_LIMITS.logBurst), count(DEFAULT_LIMITS.logLinesPerSecond)],
  },
  "reconnect delay": {
    limits: ["reconnectMinMs", "reconnectMaxMs", "keepAliveSeconds"],
    numbers: [
      duration(DEFAULT_LIMITS.reconnectMinMs),
      duration(DEFAULT_LIMITS.reconnectMaxMs),
      duration(DEFAULT_LIMITS.keepAliveSeconds * 1000),
    ],
  },
  "wait for the CONNACK / the SUBACK": {
    limits: ["connackTimeoutMs", "subackTimeoutMs"],
    numbers: [
      duration(DEFAULT_LIMITS.connackTimeoutMs),
      duration(DEFAULT_LIMITS.subackTimeoutMs),
    ],
  },
  "message / payload / PEM": {
    limits: [],
    numbers: [size(MAX_MESSAGE_BYTES), size(MAX_PAYLOAD_BYTES), size(MAX_PUBLIC_KEY_PEM_BYTES)],
  },
};

Deno.test("docs/security.md: each row of the limits table states the defaults", () => {
  const table = limitsTable();
  assert.deepEqual([...table.keys()].sort(), Object.keys(ROWS).sort(), "the table's rows");
  for (const [what, { numbers }] of Object.entries(ROWS)) {
    assert.deepEqual(numbersIn(table.get(what)!), numbers, `${what}: ${table.get(what)}`);
  }
  assert.match(table.get("key exchanges at a time")!, /^one per event-loop turn$/);
});

Deno.test("docs/security.md: every default limit has its row in the table", () => {
  const stated = Object.values(ROWS).flatMap((row) => row.limits).sort();
  assert.deepEqual(stated, Object.keys(DEFAULT_LIMITS).sort());
});

Deno.test("docs/security.md names the module that holds DEFAULT_LIMITS", async () => {
  const path = /The defaults are `DEFAULT_LIMITS` in `([^`]+)`/.exec(doc)?.[1];
  assert.ok(path, "the Limits section says where the defaults are");
  const named = await import(new URL(path, ROOT).href);
  assert.equal(named.DEFAULT_LIMITS, DEFAULT_LIMITS);
});
