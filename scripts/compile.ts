/**
 * `deno task compile`: builds `secure_mqtt_client`, `secure_mqtt_responder` and
 * `secure_mqtt_check` as standalone
 * executables (`deno compile`) that run with no Deno installed, from any working directory
 * (docs/binary.md).
 *
 * Each binary holds its entry point's module graph (`dhparam4096.pem` and `deno.json` are
 * imports, so they are in it) and the permissions of its `deno.json` task, which a binary can
 * never exceed. `deno compile` glues that onto denort, the slim Deno runtime it downloads once
 * per version and target; where that download cannot work, `DENORT_BIN` names a denort to use.
 *
 * @module
 */

import { parseArguments, UsageError } from "../cli/args.ts";
import { printErr, printOut, runCommand } from "../cli/command.ts";
import { errorLine } from "../lib/log.ts";
import denoJson from "../deno.json" with { type: "json" };

/** The project root, wherever the script is run from (decoded: a path may hold a space). */
const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);

/** The deno.json tasks that become binaries. */
export type BinaryTask = "client" | "responder" | "check";

/** What the script builds: output name → the deno.json task whose entry and flags it takes. */
export const COMMANDS: Readonly<Record<string, BinaryTask>> = {
  secure_mqtt_client: "client",
  secure_mqtt_responder: "responder",
  secure_mqtt_check: "check",
};

/** Targets `deno compile --target` accepts in Deno 2.x; the lab machines run the first. */
export const TARGETS: readonly string[] = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
];

const NAME = "compile";
const USAGE = `usage: deno task compile [-h] [--target TARGET] [--output-dir DIR] ` +
  `[--read-scope PATHS]`;
const HELP = `${USAGE}

Builds ./secure_mqtt_client, ./secure_mqtt_responder and ./secure_mqtt_check: single files
that run without Deno.

options:
  -h, --help          show this help message and exit
  --target TARGET     platform to build for (default: this machine, ${Deno.build.target});
                      one of: ${TARGETS.join(", ")}
  --output-dir DIR    where to write the binaries (default: the project root)
  --read-scope PATHS  comma-separated files/directories the binaries may read, instead of any
                      (then --cafile and --identity work only for files under one of them)

environment:
  DENORT_BIN          path to a denort binary (Deno ${Deno.version.deno}, for TARGET) to build
                      on, instead of downloading it: for machines without internet
`;

/** A build failure, already one line for stderr (exit 1). */
export class BuildError extends Error {
  override name = "BuildError";
}

/**
 * A task's command line from deno.json: its permission flags and its entry point. The binaries
 * take exactly these flags, so `deno task` and the binaries never drift apart.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { taskParts } from "./compile.ts";
 * const { flags, entry } = taskParts("client");
 * assert.equal(entry, "main.ts");
 * assert.ok(flags.includes("--allow-net"));
 * ```
 */
export function taskParts(task: BinaryTask): { flags: string[]; entry: string } {
  const words = denoJson.tasks[task].trim().split(/\s+/);
  if (words[0] !== "deno" || words[1] !== "run") {
    throw new Error(`task ${task} is not a "deno run": ${denoJson.tasks[task]}`);
  }
  return { flags: words.slice(2, -1), entry: words.at(-1)! };
}

/**
 * The `deno compile` arguments for one binary: the task's flags (with `--allow-read` narrowed
 * to `readScope` when given), the target and the output.
 */
export function compileArgs(
  task: BinaryTask,
  output: string,
  options: { target: string; readScope?: string },
): string[] {
  const { flags, entry } = taskParts(task);
  const permissions = options.readScope === undefined
    ? flags
    : flags.map((f) => f === "--allow-read" ? `--allow-read=${options.readScope}` : f);
  // --no-check: the build type-checks both entry points first, in one `deno check`.
  return [
    "compile",
    "--no-check",
    ...permissions,
    "--target",
    options.target,
    "--output",
    output,
    entry,
  ];
}

/**
 * Checks a `DENORT_BIN` value before `deno compile` sees it, so that each way it can be wrong
 * gets its own line. Returns the absolute path (the compile runs from the project root).
 */
export function checkDenortBin(path: string, target: string): string {
  const where = `DENORT_BIN=${path}`;
  if (path === "") throw new BuildError(`${where} is empty; unset it or give a denort path`);
  const absolute = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(absolute);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new BuildError(`${where}: no such file (give the path of an unzipped denort binary)`);
    }
    throw new BuildError(`${where}: cannot read it: ${errorLine(error)}`, { cause: error });
  }
  if (!info.isFile) throw new BuildError(`${where} is not a file (give the denort binary itself)`);
  // A denort that lost its x bit was most likely copied in wrongly; Windows has no such bit.
  if (!target.includes("windows") && info.mode !== null && (info.mode & 0o111) === 0) {
    throw new BuildError(`${where} is not executable (chmod +x it, or re-extract the denort zip)`);
  }
  return absolute;
}

/**
 * One line for a failed `deno compile` whose failure is about the base binary (denort): the
 * download failed, or `DENORT_BIN` is unusable. `undefined` for any other failure (a type
 * error, a missing module), whose own output says best what is wrong.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { explainCompileFailure } from "./compile.ts";
 * const line = explainCompileFailure("Caused by:\n 0: Setting up base binary.\n 1: dns error", {
 *   target: "x86_64-unknown-linux-gnu",
 * });
 * assert.match(line!, /^cannot download the Deno runtime .*: dns error; .*DENORT_BIN/);
 * ```
 */
export function explainCompileFailure(
  output: string,
  context: { target: string; denortBin?: string },
): string | undefined {
  // deno colours its output unless NO_COLOR is set; we match and quote plain text.
  // deno-lint-ignore no-control-regex
  const text = output.replace(/\x1b\[[0-9;]*m/g, "");
  if (!/Setting up base binary|Could not find denort|Writing binary bytes/.test(text)) {
    return undefined;
  }
  // The innermost "N: reason" line of anyhow's "Caused by:" chain, else the first error line.
  const reasons = (text.split("Caused by:")[1] ?? "").split("\n")
    .map((line) => /^\s*\d+:\s*(.*\S)\s*$/.exec(line)?.[1])
    .filter((r): r is string => r !== undefined && r !== "<unknown>");
  const cause = (reasons.at(-1) ?? /^error: (.*)$/m.exec(text)?.[1] ?? "unknown error")
    .replace(/[.]$/, "");
  if (context.denortBin !== undefined) {
    return `DENORT_BIN=${context.denortBin} cannot serve as the Deno runtime for ` +
      `${context.target}: ${cause} (it must be denort ${Deno.version.deno} for that target)`;
  }
  return `cannot download the Deno runtime for the binaries (denort-${context.target}.zip of ` +
    `Deno ${Deno.version.deno}): ${cause}; without internet, set DENORT_BIN to that denort, ` +
    "unzipped (see docs/binary.md)";
}

/** `deno compile`'s own report, minus any Rust backtrace (noise, and not ours to show). */
function withoutBacktrace(text: string): string {
  return text.split(/\n\s*Stack backtrace:/)[0].trimEnd();
}

/** Runs `deno ARGS` from the project root (so deno finds deno.json, whatever our cwd is). */
async function deno(args: string[], env: Record<string, string>) {
  const result = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { ...env, RUST_BACKTRACE: "0" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    success: result.success,
    text: decoder.decode(result.stdout) + decoder.decode(result.stderr),
  };
}

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArguments(args, {
    help: { type: "boolean", short: "h" },
    target: { type: "string" },
    "output-dir": { type: "string" },
    "read-scope": { type: "string" },
  });
  if (values.help) return printOut(HELP), 0;
  if (positionals.length > 0) {
    throw new UsageError(`unrecognized arguments: ${positionals.join(" ")}`);
  }
  const target = values.target ?? Deno.build.target;
  if (!TARGETS.includes(target)) {
    throw new UsageError(`unknown --target '${target}' (choose from ${TARGETS.join(", ")})`);
  }
  const dir = values["output-dir"] ?? ROOT;
  if (dir === "") throw new UsageError("--output-dir must not be empty");
  const outputDir = (dir.startsWith("/") ? dir : `${Deno.cwd()}/${dir}`).replace(/\/$/, "");
  const readScope = values["read-scope"];
  if (readScope !== undefined && readScope.split(",").some((p) => p.trim() === "")) {
    throw new UsageError(`--read-scope '${readScope}' has an empty path`);
  }
  let raw: string | undefined;
  try {
    raw = Deno.env.get("DENORT_BIN");
  } catch (error) {
    throw new BuildError("cannot read DENORT_BIN: run this as `deno task compile`", {
      cause: error,
    });
  }
  const denortBin = raw === undefined ? undefined : checkDenortBin(raw, target);

  const entries = Object.values(COMMANDS).map((task) => taskParts(task).entry);
  const checked = await deno(["check", ...entries], {});
  if (!checked.success) {
    throw new BuildError(
      `deno check ${entries.join(" ")} failed:\n${withoutBacktrace(checked.text)}`,
    );
  }
  for (const [name, task] of Object.entries(COMMANDS)) {
    const output = `${outputDir}/${name}`;
    const result = await deno(
      compileArgs(task, output, { target, readScope }),
      denortBin === undefined ? {} : { DENORT_BIN: denortBin },
    );
    if (!result.success) {
      const line = explainCompileFailure(result.text, { target, denortBin });
      throw new BuildError(
        line ?? `deno compile ${taskParts(task).entry} failed:\n${withoutBacktrace(result.text)}`,
      );
    }
    // deno compile's own report lists what went into the binary (dhparam4096.pem among it).
    printErr(`${withoutBacktrace(result.text)}\n`);
    const file = target.includes("windows") ? `${output}.exe` : output;
    const size = Deno.statSync(file).size / (1024 * 1024);
    printErr(`${NAME}: built ${file} (${size.toFixed(0)} MiB, ${target})\n`);
  }
  if (denortBin !== undefined && isDenoCli(denortBin)) {
    // Allowed, because it checks the whole build offline (CI does this), but the output only
    // behaves like `deno`: say so, or someone will ship it.
    printErr(
      `${NAME}: warning: DENORT_BIN is the deno CLI, not denort: the files above were built ` +
        "but do not run our programs (a build check only; do not ship them)\n",
    );
  }
  return 0;
}

function isDenoCli(path: string): boolean {
  try {
    return Deno.realPathSync(path) === Deno.realPathSync(Deno.execPath());
  } catch {
    return false;
  }
}

if (import.meta.main) {
  Deno.exit(
    await runCommand({ name: NAME, usage: USAGE, failures: [BuildError], main }, Deno.args),
  );
}
