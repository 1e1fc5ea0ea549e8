/**
 * Test helper: the independent Python peers in `tests/peers/` (pyca/cryptography + paho-mqtt,
 * Debian's `/usr/bin/python3`), with the skip rule of `support/environment.ts`: a missing peer
 * skips with a printed reason, except under `CI=true`, where the tests run and fail.
 *
 * @module
 */

import { PYTHON, skipUnless } from "./environment.ts";
import { type Peer, spawnPeer } from "./processes.ts";

export { PYTHON };

const PEERS = new URL("../tests/peers/", import.meta.url);

/**
 * Why the Python peers cannot run here, or undefined when they can (always undefined under
 * `CI=true`: there a missing peer must fail the tests, not skip them).
 */
export function pythonPeersSkipReason(): string | undefined {
  return skipUnless("the Python peers", () => {
    try {
      const out = new Deno.Command(PYTHON, {
        args: ["-c", "import cryptography, paho.mqtt"],
        stdout: "null",
        stderr: "null",
      }).outputSync();
      return out.success ? undefined : `${PYTHON} lacks cryptography or paho-mqtt ` +
        "(apt-get install python3-cryptography python3-paho-mqtt)";
    } catch {
      return `${PYTHON} not found (apt-get install python3)`;
    }
  });
}

/**
 * Starts `tests/peers/responder.py` in `mode` against a broker and waits until its
 * subscriptions are acknowledged (it prints "ready"), so no request can race its SUBSCRIBE.
 */
export async function startPythonResponder(
  broker: { host: string; port: number },
  mode = "normal",
  extra: string[] = [],
): Promise<Peer> {
  const script = decodeURIComponent(new URL("responder.py", PEERS).pathname);
  const peer = spawnPeer(PYTHON, [
    "-u",
    script,
    "--host",
    broker.host,
    "--port",
    String(broker.port),
    "--mode",
    mode,
    ...extra,
  ]);
  try {
    await peer.waitForLine(/^ready$/, { stream: "stdout" });
  } catch (error) {
    await peer[Symbol.asyncDispose]();
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
      decodeURIComponent(new URL("client.py", PEERS).pathname),
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
