/**
 * `deno task compile`: build `secure_mqtt_client` and `secure_mqtt_responder` as standalone
 * executables (`deno compile`) that run with no Deno installed, from any working directory.
 *
 * What goes into each binary: the entry point and its static module graph, which includes
 * `dhparam4096.pem` (a text import in lib/protocol.ts) and `deno.json` (for `--version`), plus
 * the permissions in {@linkcode BAKED_PERMISSIONS}. `deno compile` glues that onto *denort*, the
 * slim Deno runtime, which it downloads once per version and target into `$DENO_DIR`. Where
 * that download cannot work (no internet), point `DENORT_BIN` at a denort binary instead.
 * Every failure is one line on stderr (exit 1; a bad command line exits 2), never a trace.
 *
 * @example
 * ```sh
 * deno task compile                # writes ./secure_mqtt_client and ./secure_mqtt_responder
 * deno task compile --target aarch64-unknown-linux-gnu --output-dir dist/arm64
 * DENORT_BIN=$HOME/denort deno task compile   # offline, with a denort you copied in
 * ```
 * @module
 */

import { parseArgs } from "node:util";

/** The project root (deno.json, main.ts, responder.ts), wherever the script is run from. */
/** The project root as a path: `URL.pathname` would keep percent-escapes (a space is %20). */
const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);

/**
 * What the script builds: output name → entry point, relative to the project root.
 *
 * @example
 * ```ts
 * import { COMMANDS } from "./compile.ts";
 * for (const [name, entry] of Object.entries(COMMANDS)) console.log(`${name} <- ${entry}`);
 * // secure_mqtt_client <- main.ts
 * // secure_mqtt_responder <- responder.ts
 * ```
 */
export const COMMANDS: Readonly<Record<string, string>> = {
  secure_mqtt_client: "main.ts",
  secure_mqtt_responder: "responder.ts",
};

/**
 * Permissions baked into both binaries (a compiled binary can never exceed them, and never
 * prompts for more):
 *
 * - `--allow-net`: the broker's host and port are run-time arguments, so no list fits.
 * - `--allow-env=MQTT_PASSWORD`: the only variable either command reads.
 * - `--allow-read`, unscoped: `--cafile FILE` names a file chosen at run time, anywhere the
 *   user keeps it, and Deno scopes can only name paths known at build time. That is the only
 *   read the code does (`dhparam4096.pem` is embedded as a module, not read from disk). The
 *   binary cannot load code it was not built with (no --allow-import, -run, -ffi, -write), so
 *   only our own code can use the grant. `--read-scope` narrows it for sites whose CA path is
 *   fixed.
 * - `--no-prompt`: a denied permission throws (and is reported in one line) instead of asking.
 *
 * @example
 * ```ts
 * import { BAKED_PERMISSIONS } from "./compile.ts";
 * BAKED_PERMISSIONS.includes("--allow-write"); // false: no binary can write a file
 * ```
 */
export const BAKED_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-env=MQTT_PASSWORD",
  "--allow-read",
  "--no-prompt",
];

/**
 * Targets `deno compile --target` accepts in Deno 2.x; the lab machines run the first.
 *
 * @example
 * ```ts
 * import { TARGETS } from "./compile.ts";
 * TARGETS.includes(Deno.build.target); // true where this machine can be the default target
 * ```
 */
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

Builds ./secure_mqtt_client and ./secure_mqtt_responder: single files that run without Deno.

options:
  -h, --help          show this help message and exit
  --target TARGET     platform to build for (default: this machine, ${Deno.build.target});
                      one of: ${TARGETS.join(", ")}
  --output-dir DIR    where to write the binaries (default: the project root)
  --read-scope PATHS  comma-separated files/directories the binaries may read, instead of any
                      (then --cafile works only for a CA file under one of them)

environment:
  DENORT_BIN          path to a denort binary (Deno ${Deno.version.deno}, for TARGET) to build
                      on, instead of downloading it: for machines without internet
`;

/** A bad command line for this script (exit 2). */
class UsageError extends Error {}

/** A failure already phrased as one line for stderr (exit 1). */
class BuildError extends Error {}

interface Options {
  target: string;
  outputDir: string;
  readScope?: string;
}

function parseOptions(args: string[]): Options | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        help: { type: "boolean", short: "h" },
        target: { type: "string" },
        "output-dir": { type: "string" },
        "read-scope": { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    // node's messages can run to several lines; keep the first.
    throw new UsageError(String((error as Error).message).split("\n")[0]);
  }
  const { values } = parsed;
  if (values.help) return "help";
  const target = values.target ?? Deno.build.target;
  if (!TARGETS.includes(target)) {
    throw new UsageError(`unknown --target '${target}' (choose from ${TARGETS.join(", ")})`);
  }
  const outputDir = values["output-dir"] ?? ROOT;
  if (outputDir === "") throw new UsageError("--output-dir must not be empty");
  const readScope = values["read-scope"];
  if (readScope !== undefined && readScope.split(",").some((p) => p.trim() === "")) {
    throw new UsageError(`--read-scope '${readScope}' has an empty path`);
  }
  return { target, outputDir: resolvePath(outputDir), readScope };
}

function resolvePath(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}

/**
 * Checks a `DENORT_BIN` value before `deno compile` sees it, so each way it can be wrong gets
 * its own line. Returns the absolute path (the compile runs from the project root, not here).
 * Executable is demanded although `deno compile` only reads the file: a denort that lost its
 * x bit was most likely copied in wrongly, and on a Windows target the check is skipped.
 *
 * @example
 * ```ts
 * import { checkDenortBin } from "./compile.ts";
 * const raw = Deno.env.get("DENORT_BIN");
 * if (raw !== undefined) {
 *   const denortBin = checkDenortBin(raw, "x86_64-unknown-linux-gnu"); // an absolute path
 * }
 * ```
 */
export function checkDenortBin(path: string, target: string): string {
  const where = `DENORT_BIN=${path}`;
  if (path === "") throw new BuildError(`${where} is empty; unset it or give a denort path`);
  const absolute = resolvePath(path);
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(absolute);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new BuildError(`${where}: no such file (give the path of an unzipped denort binary)`);
    }
    throw new BuildError(`${where}: cannot read it: ${firstLine(error)}`);
  }
  if (!info.isFile) throw new BuildError(`${where} is not a file (give the denort binary itself)`);
  const windows = target.includes("windows");
  if (!windows && info.mode !== null && (info.mode & 0o111) === 0) {
    throw new BuildError(`${where} is not executable (chmod +x it, or re-extract the denort zip)`);
  }
  return absolute;
}

/**
 * Turns a failed `deno compile`'s output into one line when the failure is about the base
 * binary (denort): the download failed, or `DENORT_BIN` is unusable. Returns `undefined` for
 * any other failure (a type error, a missing module), whose own output is the best report.
 *
 * @example
 * ```ts
 * import { explainCompileFailure } from "./compile.ts";
 * explainCompileFailure("Caused by:\n 0: Setting up base binary.\n 1: dns error", {
 *   target: "x86_64-unknown-linux-gnu",
 * }); // "cannot download denort (...): dns error; ... set DENORT_BIN ..."
 * ```
 */
export function explainCompileFailure(
  output: string,
  context: { target: string; denortBin?: string },
): string | undefined {
  const text = stripAnsi(output);
  const aboutBase = /Setting up base binary|Could not find denort|Writing binary bytes/.test(text);
  if (!aboutBase) return undefined;
  const cause = rootCause(text);
  if (context.denortBin !== undefined) {
    return `DENORT_BIN=${context.denortBin} cannot serve as the Deno runtime for ` +
      `${context.target}: ${cause} (it must be denort ${Deno.version.deno} for that target)`;
  }
  const zip = `denort-${context.target}.zip`;
  return `cannot download the Deno runtime for the binaries (${zip} of Deno ` +
    `${Deno.version.deno}): ${cause}; without internet, set DENORT_BIN to that denort, ` +
    `unzipped (see README: Install on the lab machines)`;
}

/** The innermost `N: reason` line of an anyhow "Caused by:" chain, else the first error line. */
function rootCause(text: string): string {
  const chain = text.split("Caused by:")[1] ?? "";
  const reasons = chain.split("\n")
    .map((line) => /^\s*\d+:\s*(.*\S)\s*$/.exec(line)?.[1])
    .filter((r): r is string => r !== undefined && !/^<unknown>$/.test(r));
  const last = reasons.at(-1) ?? /^error: (.*)$/m.exec(text)?.[1] ?? "unknown error";
  return last.replace(/[.]$/, "");
}

function stripAnsi(text: string): string {
  // deno colours its output unless NO_COLOR is set; we match and quote plain text.
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

/** `deno compile`'s own report, minus any Rust backtrace (noise, and not ours to show). */
function withoutBacktrace(text: string): string {
  return text.split(/\n\s*Stack backtrace:/)[0].trimEnd();
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}

/**
 * The `deno compile` arguments for one binary.
 *
 * @example
 * ```ts
 * import { compileArgs } from "./compile.ts";
 * compileArgs("main.ts", "dist/secure_mqtt_client", {
 *   target: "x86_64-unknown-linux-gnu",
 *   readScope: "/etc/ssl",
 * });
 * // ["compile", "--no-check", "--allow-net", "--allow-env=MQTT_PASSWORD", "--allow-read=/etc/ssl",
 * //  "--no-prompt", "--target", "x86_64-unknown-linux-gnu", "--output", "dist/secure_mqtt_client",
 * //  "main.ts"]
 * ```
 */
export function compileArgs(
  entry: string,
  output: string,
  options: { target: string; readScope?: string },
): string[] {
  const permissions = options.readScope === undefined
    ? BAKED_PERMISSIONS
    : BAKED_PERMISSIONS.map((p) => p === "--allow-read" ? `--allow-read=${options.readScope}` : p);
  // --no-check: build() type-checks both entry points first, in one `deno check` (about half
  // the cost of each compile checking its own graph).
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

async function build(options: Options, denortBin: string | undefined): Promise<string[]> {
  const entries = Object.values(COMMANDS);
  const checked = await deno(["check", ...entries], {});
  if (!checked.success) {
    throw new BuildError(
      `deno check ${entries.join(" ")} failed:\n${withoutBacktrace(checked.text)}`,
    );
  }
  const reports: string[] = [];
  for (const [name, entry] of Object.entries(COMMANDS)) {
    const output = `${options.outputDir.replace(/\/$/, "")}/${name}`;
    const result = await deno(
      compileArgs(entry, output, options),
      denortBin === undefined ? {} : { DENORT_BIN: denortBin },
    );
    const text = result.text;
    if (!result.success) {
      const line = explainCompileFailure(text, { target: options.target, denortBin });
      if (line !== undefined) throw new BuildError(line);
      // Not about denort (a type error, a missing module): deno's own report says best what.
      throw new BuildError(`deno compile ${entry} failed:\n${withoutBacktrace(text)}`);
    }
    reports.push(withoutBacktrace(text));
    const file = options.target.includes("windows") ? `${output}.exe` : output;
    const size = Deno.statSync(file).size / (1024 * 1024);
    reports.push(`${NAME}: built ${file} (${size.toFixed(0)} MiB, ${options.target})`);
  }
  return reports;
}

function isDenoCli(path: string): boolean {
  try {
    return Deno.realPathSync(path) === Deno.realPathSync(Deno.execPath());
  } catch {
    return false;
  }
}

function readDenortEnv(): string | undefined {
  try {
    return Deno.env.get("DENORT_BIN");
  } catch {
    throw new BuildError("cannot read DENORT_BIN: run this as `deno task compile`");
  }
}

/**
 * Runs the script; returns the exit status (0 built, 1 failure, 2 usage error).
 *
 * @example
 * ```ts
 * import { main } from "./compile.ts";
 * await main(["--help"]); // 0, after printing the help
 * await main(["--target", "vax"]); // 2: an unknown target is a usage error
 * ```
 */
export async function main(args: string[]): Promise<number> {
  try {
    const options = parseOptions(args);
    if (options === "help") {
      console.log(HELP);
      return 0;
    }
    const raw = readDenortEnv();
    const denortBin = raw === undefined ? undefined : checkDenortBin(raw, options.target);
    for (const line of await build(options, denortBin)) console.error(line);
    if (denortBin !== undefined && isDenoCli(denortBin)) {
      // Allowed, because it checks the whole build offline (CI does this), but the output
      // only behaves like `deno`: say so, or someone will ship it.
      console.error(
        `${NAME}: warning: DENORT_BIN is the deno CLI, not denort: the files above were built ` +
          "but do not run our programs (a build check only; do not ship them)",
      );
    }
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`${NAME}: error: ${error.message}\n${USAGE}`);
      return 2;
    }
    if (error instanceof BuildError) {
      console.error(`${NAME}: error: ${error.message}`);
      return 1;
    }
    if (error instanceof Deno.errors.NotCapable) {
      console.error(`${NAME}: error: ${firstLine(error)} (run this as \`deno task compile\`)`);
      return 1;
    }
    console.error(`${NAME}: internal error: ${firstLine(error)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
