/**
 * The README's commands, as a reader would type them: the quick start (the demo through npx, a
 * broker, the responder and the client on the lab's port 1884) and the transcripts of the
 * Usage section. Commands are taken from the README itself, not restated here; the compiled
 * commands (`secure_mqtt_client`, `secure_mqtt_responder`) run as what they are built from,
 * their deno.json task. Commands that need what this machine lacks (a lab broker, a denort, a
 * real fingerprint) are left out.
 */

import assert from "node:assert/strict";
import { CLIENT_USAGE } from "../../cli/client_options.ts";
import { commandProblem, skipUnless } from "../../support/environment.ts";
import { MOSQUITTO_PATH, mosquittoSkipReason } from "../../support/mosquitto.ts";
import { type Peer, ROOT, runPeer, spawnPeer, taskCommand } from "../../support/processes.ts";

const readme = await Deno.readTextFile(`${ROOT}/README.md`);

/** The lines of each fenced `sh` block, in order. */
function shellBlocks(): string[][] {
  return [...readme.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1].trimEnd().split("\n"));
}

/** The block whose first line starts with `prefix`. */
function blockStartingWith(prefix: string): string[] {
  const block = shellBlocks().find((lines) => lines[0].startsWith(prefix));
  assert.ok(block, `the README has no sh block starting with ${prefix}`);
  return block;
}

/** A command without its trailing comment; `expected` is what a `# → X` comment promises. */
function parse(line: string): { command: string; background: boolean; expected?: string } {
  const comment = line.indexOf(" # ");
  const command = (comment < 0 ? line : line.slice(0, comment)).trim();
  const expected = comment < 0 ? undefined : /^#\s*→\s*(.*)$/.exec(line.slice(comment + 1).trim());
  const background = command.endsWith("&");
  return {
    command: background ? command.slice(0, -1).trim() : command,
    background,
    expected: expected?.[1],
  };
}

/** A directory with `secure_mqtt_client` and `secure_mqtt_responder`: their tasks, as shims. */
async function binaryShims(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "readme-bin-" });
  for (
    const [name, task] of [["secure_mqtt_client", "client"], ["secure_mqtt_responder", "responder"]]
  ) {
    const [, ...args] = taskCommand(task);
    const flags = args.slice(0, -1).join(" ");
    const entry = `${ROOT}/${args.at(-1)}`;
    await Deno.writeTextFile(
      `${dir}/${name}`,
      `#!/bin/sh\nexec '${Deno.execPath()}' ${flags} '${entry}' "$@"\n`,
      { mode: 0o755 },
    );
  }
  return dir;
}

function bash(command: string, env: Record<string, string> = {}) {
  return runPeer("bash", ["-c", command], { env, timeoutMs: 60_000 });
}

const npxSkip = skipUnless(
  "npx",
  () => commandProblem("npx", ["--version"], "apt-get install npm"),
);

Deno.test({
  name: "README quick start: the demo commands, as written, exit 0",
  ignore: npxSkip !== undefined,
  async fn() {
    for (const line of blockStartingWith("npx --yes deno@2.9.6 task demo")) {
      const { command } = parse(line);
      const run = await bash(command);
      assert.equal(run.code, 0, `${command}:\n${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, /answer: |What made the difference/, command);
    }
  },
});

Deno.test("README usage block: exactly what the client's usage says", () => {
  const block = /^## Usage\n\n```\n([\s\S]*?)\n```$/m.exec(readme);
  assert.ok(block, "the README has a usage block under ## Usage");
  assert.equal(block[1], CLIENT_USAGE);
});

/** The quick start runs on the lab's port; a broker of someone else's there would answer it. */
function port1884Problem(): string | undefined {
  try {
    Deno.listen({ hostname: "127.0.0.1", port: 1884 }).close();
    return undefined;
  } catch (error) {
    return `port 1884, the lab's, is taken (${(error as Error).name})`;
  }
}

Deno.test({
  name: "README quick start and usage transcripts, against a broker on port 1884",
  ignore: mosquittoSkipReason() !== undefined ||
    skipUnless("port 1884 free", port1884Problem) !== undefined,
  async fn() {
    const taken = port1884Problem();
    if (taken !== undefined) throw new Error(`${taken}: the quick start needs it`);
    const shims = await binaryShims();
    const env = {
      PATH: `${shims}:${MOSQUITTO_PATH!.replace(/\/[^/]*$/, "")}:${Deno.env.get("PATH")}`,
    };
    await using services = new AsyncDisposableStack();
    try {
      // The quick start: services in the background, each awaited the way its comment says.
      for (const line of blockStartingWith("/usr/sbin/mosquitto -p 1884")) {
        const { command, background, expected } = parse(line);
        if (background) {
          const service: Peer = services.use(spawnPeer("bash", ["-c", `exec ${command}`], { env }));
          // The broker's log goes to /dev/null, as the README has it; the responder retries
          // until the broker listens, and says when it is subscribed.
          if (!command.includes("mosquitto")) {
            await service.waitForLine(/subscribed to \+\/\+\/request/);
          }
          continue;
        }
        const run = await bash(command, env);
        assert.equal(run.code, 0, `${command}:\n${run.stderr}`);
        if (expected !== undefined) assert.equal(run.stdout.trim(), expected, command);
      }

      // The usage transcripts: "$ command" lines, then what the command prints.
      const transcript = blockStartingWith("$ secure_mqtt_client");
      for (let i = 0; i < transcript.length; i++) {
        if (!transcript[i].startsWith("$ ")) continue;
        const command = transcript[i].slice(2);
        const shown: string[] = [];
        while (i + 1 < transcript.length && !transcript[i + 1].startsWith("$ ")) {
          shown.push(transcript[++i]);
        }
        const run = await bash(`{ ${command}; } 2>&1`, env);
        assert.equal(run.stdout.trimEnd(), shown.join("\n"), command);
      }
    } finally {
      await Deno.remove(shims, { recursive: true });
    }
  },
});
