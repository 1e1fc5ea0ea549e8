/**
 * `secure_mqtt_check`: the lab's conformance suite. Runs a client (or a responder) under test,
 * in any language, case by case against the contract and its traps, and reports each case.
 * Parses the command line, runs the suite, prints the table (or JSON), writes JUnit XML.
 *
 * @module
 */

import { casesOf, type CheckCase, selectCases } from "./lib/check/cases.ts";
import { runClientSuite } from "./lib/check/client_suite.ts";
import { ProgramStartError, stopAllPrograms } from "./lib/check/process.ts";
import {
  type CheckReport,
  summaryLine,
  TableFormat,
  tally,
  toJson,
  toJunit,
} from "./lib/check/report.ts";
import { runResponderSuite } from "./lib/check/responder_suite.ts";
import { type CaseResult, INTERRUPTED } from "./lib/check/runner.ts";
import { UsageError } from "./cli/args.ts";
import {
  CHECK_HELP,
  CHECK_NAME,
  CHECK_USAGE,
  type CheckCommand,
  parseCheckArgs,
} from "./cli/check_args.ts";
import { printErr, printOut, runCommand } from "./cli/command.ts";
import { stderrLogger } from "./cli/logger.ts";
import { errorLine } from "./lib/log.ts";
import denoJson from "./deno.json" with { type: "json" };

/**
 * Writes to stdout; once its reader has gone (`| head`), the rest of the report is dropped and
 * the run goes on to its exit status and its JUnit file.
 */
let stdoutGone = false;
function out(text: string): void {
  if (stdoutGone) return;
  try {
    printOut(text);
  } catch (error) {
    if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
    stdoutGone = true;
  }
}

/** A failure of the checker itself (its report could not be written): exit 1. */
class CheckError extends Error {
  override name = "CheckError";
}

async function main(args: string[]): Promise<number> {
  const parsed = parseCheckArgs(args);
  if (parsed.kind === "help") return printOut(CHECK_HELP), 0;
  if (parsed.kind === "version") return printOut(`${CHECK_NAME} ${denoJson.version}\n`), 0;
  if (parsed.kind === "list") {
    const modes = parsed.mode ? [parsed.mode] : (["client", "responder"] as const);
    out(listing(modes.flatMap((mode) => casesOf(mode))));
    return 0;
  }
  return await check(parsed);
}

async function check(parsed: Exclude<CheckCommand, { kind: "help" | "version" | "list" }>) {
  const { options } = parsed;
  const cases = selectCases(parsed.kind, options);
  const logger = stderrLogger(CHECK_NAME, options.verbose);
  const table = new TableFormat(Math.max(...cases.map((c) => c.id.length)));
  const target = parsed.kind === "client" || parsed.command
    ? parsed.command!.join(" ")
    : `the responder on ${parsed.broker!.host}:${parsed.broker!.port}`;
  if (!options.json) out(`${CHECK_NAME} ${parsed.kind}: ${target}\n\n${table.header()}\n`);
  const onResult = (result: CaseResult) => {
    if (!options.json) out(`${table.row(result)}\n`);
  };

  const interrupted = new AbortController();
  const onSignal = () => interrupted.abort();
  const signals = (["SIGINT", "SIGTERM"] as const).filter((signal) => {
    try {
      Deno.addSignalListener(signal, onSignal);
      return true;
    } catch {
      return false; // no SIGTERM on Windows
    }
  });
  const startedAt = new Date();
  const started = performance.now();
  let results: CaseResult[];
  try {
    const hooks = { onResult, signal: interrupted.signal };
    results = parsed.kind === "client"
      ? await runClientSuite(cases, {
        command: parsed.command,
        hostFlag: options.hostFlag,
        portFlag: options.portFlag,
        deadlineMs: options.deadlineMs,
        logger,
      }, hooks)
      : await runResponderSuite(cases, {
        command: parsed.command,
        broker: parsed.broker,
        trust: parsed.trust,
        netid: parsed.netid,
        hostFlag: options.hostFlag,
        portFlag: options.portFlag,
        deadlineMs: options.deadlineMs,
        waitMs: options.waitMs,
        logger,
      }, hooks);
  } catch (error) {
    if (error instanceof ProgramStartError) throw new UsageError(error.message, { cause: error });
    throw error;
  } finally {
    await stopAllPrograms();
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  }
  const report: CheckReport = {
    tool: CHECK_NAME,
    version: denoJson.version,
    mode: parsed.kind,
    target,
    startedAt: startedAt.toISOString(),
    ms: Math.round(performance.now() - started),
    results,
  };
  if (options.json) out(toJson(report));
  else out(`\n${summaryLine(results, report.ms)}\n`);
  if (options.junit !== undefined) {
    try {
      await Deno.writeTextFile(options.junit, toJunit(report));
    } catch (error) {
      throw new CheckError(`cannot write ${options.junit}: ${errorLine(error)}`, { cause: error });
    }
  }
  if (interrupted.signal.aborted) {
    const finished = results.filter((r) => r.reason !== INTERRUPTED).length;
    printErr(`${CHECK_NAME}: interrupted: ${finished} of ${cases.length} cases finished\n`);
    return 1;
  }
  return tally(results).exitCode;
}

/** `--list`: each case's id, level, whether --quick runs it, and what it checks. */
function listing(cases: readonly CheckCase[]): string {
  const width = Math.max(...cases.map((c) => c.id.length));
  const lines = cases.map((c) =>
    `${c.id.padEnd(width + 2)}${(c.required ? "required" : "advisory").padEnd(10)}${
      (c.quick ? "quick" : "").padEnd(7)
    }${c.title}`
  );
  return `${"case".padEnd(width + 2)}${"level".padEnd(10)}${"".padEnd(7)}what it checks\n${
    lines.join("\n")
  }\n`;
}

if (import.meta.main) {
  Deno.exit(
    await runCommand(
      { name: CHECK_NAME, usage: CHECK_USAGE, failures: [CheckError], main },
      Deno.args,
    ),
  );
}
