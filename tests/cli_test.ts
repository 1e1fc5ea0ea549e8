/**
 * lib/cli.ts: our argv parser must behave exactly as `node:util` `parseArgs` (strict, with
 * positionals) — checked against node's own implementation on fixed and seeded random argument
 * lists — and the broker options must be validated as documented.
 */

import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import {
  BROKER_OPTIONS,
  brokerSettings,
  parseCommandLine,
  parsePort,
  UsageError,
} from "../lib/cli.ts";

const OPTIONS = { ...BROKER_OPTIONS, timeout: { type: "string" } } as const;

type Outcome = { values: Record<string, unknown>; positionals: string[] } | "error";

function node(args: string[]): Outcome {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: OPTIONS,
      strict: true,
      allowPositionals: true,
    });
    return { values: { ...values }, positionals };
  } catch {
    return "error";
  }
}

function ours(args: string[]): Outcome {
  try {
    const { values, positionals } = parseCommandLine(args, { options: OPTIONS });
    return { values: { ...values }, positionals };
  } catch (error) {
    assert.ok(error instanceof UsageError, `only UsageError, got ${error}`);
    assert.ok(!error.message.includes("\n"), "one line");
    return "error";
  }
}

const FIXED: string[][] = [
  [],
  ["alice", "uppercase", "hi"],
  ["-v", "-p", "1884", "alice", "reverse", "x"],
  ["-vp1884", "a", "b", "c"],
  ["--port=1", "--host", "h", "--", "-a", "--b"],
  ["--", "--help"],
  ["-p"],
  ["--port"],
  ["--port", "--host"],
  ["-p", "-1"],
  ["--help=yes"],
  ["--nope"],
  ["-x"],
  ["-hv"],
  ["-"],
  ["--timeout", "3", "--timeout", "4"],
  ["--verbose", "--verbose"],
  ["--tls", "--cafile", "ca.pem", "n", "a", "m"],
  ["a", "--port", "5", "b"],
];

Deno.test("parseCommandLine agrees with node:util parseArgs on fixed cases", () => {
  for (const args of FIXED) assert.deepEqual(ours(args), node(args), JSON.stringify(args));
});

Deno.test("parseCommandLine agrees with node:util parseArgs on 5,000 seeded random argv", () => {
  const words = [
    "-p",
    "--port",
    "--port=7",
    "-v",
    "-vh",
    "-pv",
    "--host",
    "--host=",
    "--tls",
    "--tls=1",
    "--",
    "-",
    "alice",
    "-x",
    "--unknown",
    "--timeout",
    "9",
    "-h",
    "--version",
    "--cafile",
    "--username",
    "u",
  ];
  let seed = 0x2545f491;
  const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 0x1_0000_0000;
  for (let i = 0; i < 5000; i++) {
    const args = Array.from(
      { length: Math.floor(next() * 6) },
      () => words[Math.floor(next() * words.length)],
    );
    assert.deepEqual(ours(args), node(args), JSON.stringify(args));
  }
});

Deno.test("parsePort takes 1-65535 in decimal only", () => {
  assert.equal(parsePort(undefined, 1884), 1884);
  assert.equal(parsePort("1", 0), 1);
  assert.equal(parsePort("65535", 0), 65535);
  for (const bad of ["0", "65536", "0x10", "1e3", " 80", "80 ", "", "-5", "1.0"]) {
    assert.throws(() => parsePort(bad, 1884), UsageError, bad);
  }
});

Deno.test("brokerSettings: defaults, --cafile implies TLS, unreadable CA is a usage error", () => {
  assert.deepEqual(brokerSettings({}), { host: "localhost", port: 1884, tls: false });
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/ca.pem`, "PEM");
    const s = brokerSettings({ cafile: `${dir}/ca.pem`, host: "broker", port: "8883" });
    assert.deepEqual(s, { host: "broker", port: 8883, tls: true, caCerts: ["PEM"] });
    assert.throws(() => brokerSettings({ cafile: `${dir}/missing.pem` }), /no such file/);
    assert.throws(() => brokerSettings({ host: "" }), UsageError);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
