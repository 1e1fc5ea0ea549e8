/**
 * Test helper: the independent Python peers (pyca/cryptography + paho-mqtt, Debian's
 * `/usr/bin/python3`), with skip logic: a missing peer skips with a printed reason, except
 * under `CI=true`, where the tests run and fail.
 *
 * @example
 * ```ts
 * import { pythonPeersSkipReason, startPythonResponder } from "./support/python.ts";
 * Deno.test({ name: "x", ignore: pythonPeersSkipReason() !== undefined, fn() {} });
 * ```
 * @module
 */

import { IN_CI } from "./mosquitto.ts";

/** The interpreter with Debian's python3-cryptography and python3-paho-mqtt. */
export const PYTHON = "/usr/bin/python3";

const PEERS = new URL("../peers/", import.meta.url);

let probed: string | undefined | null = null;

/**
 * Why the Python peers cannot run here, or undefined when they can (always undefined under
 * `CI=true`: there a missing peer must fail the tests, not skip them). Prints the reason once.
 */
export function pythonPeersSkipReason(): string | undefined {
  if (probed !== null) return probed;
  let reason: string | undefined;
  try {
    const out = new Deno.Command(PYTHON, {
      args: ["-c", "import cryptography, paho.mqtt"],
      stdout: "null",
      stderr: "piped",
    }).outputSync();
    if (!out.success) {
      reason = `${PYTHON} lacks cryptography or paho-mqtt ` +
        "(apt-get install python3-cryptography python3-paho-mqtt)";
    }
  } catch {
    reason = `${PYTHON} not found (apt-get install python3)`;
  }
  probed = IN_CI ? undefined : reason;
  if (probed) console.error(`note: skipping the tests that need the Python peers: ${probed}`);
  return probed;
}

/** A running peer process whose stdout lines can be awaited. */
export interface PeerProcess extends AsyncDisposable {
  /** Resolves with the first stdout line (past or future) matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Everything the peer printed so far on stdout and stderr. */
  output(): string;
  stop(): Promise<void>;
}

/** Spawns a script from `tests/peers/` and collects its output line by line. */
export function spawnPythonPeer(script: string, args: string[]): PeerProcess {
  const child = new Deno.Command(PYTHON, {
    args: ["-u", new URL(script, PEERS).pathname, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let errors = "";
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  let exited = false;
  const status = child.status.then((s) => (exited = true, s));
  const pumpOut = (async () => {
    let partial = "";
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + text).split("\n");
      partial = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        for (const w of waiters.filter((w) => w.pattern.test(line))) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  })();
  const pumpErr = (async () => {
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) errors += text;
  })();
  const stop = async () => {
    if (!exited) child.kill("SIGTERM");
    await status;
    await Promise.all([pumpOut, pumpErr]);
  };
  return {
    waitForLine(pattern, timeoutMs = 10_000) {
      const seen = lines.find((l) => pattern.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new Error(
              `${script}: no line matching ${pattern} within ${timeoutMs} ms:\n` +
                lines.join("\n") + errors,
            ),
          );
        }, timeoutMs);
        status.then(() => {
          clearTimeout(timer);
          reject(new Error(`${script} exited before printing ${pattern}:\n${errors}`));
        });
        waiters.push({ pattern, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    },
    output: () => lines.join("\n") + "\n" + errors,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * Starts `tests/peers/responder.py` in `mode` against a broker and waits until its
 * subscriptions are acknowledged (it prints "ready"), so no request can race its SUBSCRIBE.
 */
export async function startPythonResponder(
  broker: { host: string; port: number },
  mode = "normal",
  extra: string[] = [],
): Promise<PeerProcess> {
  const peer = spawnPythonPeer("responder.py", [
    "--host",
    broker.host,
    "--port",
    String(broker.port),
    "--mode",
    mode,
    ...extra,
  ]);
  try {
    await peer.waitForLine(/^ready$/);
  } catch (error) {
    await peer.stop();
    throw error;
  }
  return peer;
}

/** Runs `tests/peers/client.py` to completion. */
export async function runPythonClient(
  broker: { host: string; port: number },
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(PYTHON, {
    args: [
      new URL("client.py", PEERS).pathname,
      "--host",
      broker.host,
      "--port",
      String(broker.port),
      ...args,
    ],
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}
