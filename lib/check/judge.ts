/**
 * How the checker reads a finished run of a program under test: its exit, its output lines,
 * a crash (a traceback in any of the usual languages), and the one-line description of a run
 * that goes after "got" in a failure.
 *
 * @module
 */

import type { ProgramResult } from "./process.ts";
import { seconds } from "./runner.ts";

/** Stack traces as the usual languages print them; the label names the one found. */
const CRASHES: [RegExp, string][] = [
  [/Traceback \(most recent call last\)/, "a Python traceback"],
  [/^\s+at .+(\(.*:\d+:\d+\)|:\d+:\d+)$/m, "a JavaScript stack trace"],
  [/^error: Uncaught/m, "an uncaught Deno exception"],
  [/^Exception in thread /m, "a Java stack trace"],
  [/^\s+at [\w$.]+\([\w$]+\.java:\d+\)$/m, "a Java stack trace"],
  [/^panic: |^goroutine \d+ \[/m, "a Go panic"],
  [/thread '.*' panicked at/, "a Rust panic"],
  [/^Unhandled exception\. /m, "a .NET stack trace"],
];

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** `text` without terminal colour codes (a program's own, or its runtime's). */
export function plain(text: string): string {
  return text.replace(ANSI, "");
}

/** What kind of crash report `text` holds, or `undefined` for none. */
export function crashIn(text: string): string | undefined {
  const bare = plain(text);
  return CRASHES.find(([pattern]) => pattern.test(bare))?.[1];
}

/** The crash report in a run's stdout or stderr, with where it was. */
export function crashOf(run: ProgramResult): string | undefined {
  const inErr = crashIn(run.stderr);
  if (inErr) return `${inErr} on stderr`;
  const inOut = crashIn(run.stdout);
  return inOut ? `${inOut} on stdout` : undefined;
}

/** The lines of a text, without line ends and without a last empty line. */
export function linesOf(text: string): string[] {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

/** `text` quoted, shortened to about `max` characters. */
export function quote(text: string, max = 80): string {
  const chars = Array.from(text);
  const shown = chars.length > max ? `${chars.slice(0, max).join("")}…` : text;
  return JSON.stringify(shown);
}

/** True when the run ended by itself with exit status 0. */
export function succeeded(run: ProgramResult): boolean {
  return run.killed === undefined && run.code === 0;
}

/** True when the run ended by itself with a non-zero exit status (or a signal of its own). */
export function failedCleanly(run: ProgramResult): boolean {
  return run.killed === undefined && run.code !== 0 && crashOf(run) === undefined;
}

/** How a run ended: "exit 1 after 0.3 s", "killed by SIGSEGV", "still running after 30 s". */
export function endOf(run: ProgramResult): string {
  if (run.killed === "deadline") {
    return `still running after ${seconds(run.ms)} (ended by the checker)`;
  }
  if (run.killed === "case") return `ended by the checker after ${seconds(run.ms)}`;
  if (run.signal !== undefined) return `killed by ${run.signal} after ${seconds(run.ms)}`;
  return `exit ${run.code} after ${seconds(run.ms)}`;
}

/**
 * The most telling line of `text`: the exception line of a crash (the last line of a Python
 * traceback, the first that names an error in the others), else the first line.
 */
export function tellingLine(text: string): string | undefined {
  const lines = linesOf(plain(text)).filter((l) => l.trim() !== "");
  if (lines.length === 0) return undefined;
  const crash = crashIn(text);
  if (crash === undefined) return lines[0];
  if (crash.includes("Python")) return lines.at(-1);
  return lines.find((l) => /error|exception|panic/i.test(l)) ?? lines[0];
}

/**
 * One line that says what a run did: how it ended, and what it printed, e.g.
 * `exit 1 after 0.2 s; stderr "client.py: error: …" (+2 lines); nothing on stdout`.
 */
export function describeRun(run: ProgramResult): string {
  const parts = [endOf(run)];
  for (const [name, text] of [["stdout", run.stdout], ["stderr", run.stderr]] as const) {
    const lines = linesOf(plain(text)).filter((l) => l.trim() !== "");
    if (lines.length === 0) continue;
    const more = lines.length > 1
      ? ` (+${lines.length - 1} line${lines.length > 2 ? "s" : ""})`
      : "";
    parts.push(`${name} ${quote(tellingLine(text)!)}${more}`);
  }
  if (run.stdout.trim() === "" && run.stderr.trim() === "") parts.push("no output");
  return parts.join("; ");
}

/** What of a run goes into `--json`: the command, how it ended, the start of its output. */
export function runDetails(run: ProgramResult): Record<string, unknown> {
  const cut = (text: string) => text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
  return {
    command: run.command,
    code: run.code ?? null,
    signal: run.signal ?? null,
    killed: run.killed ?? null,
    ms: Math.round(run.ms),
    stdout: cut(run.stdout),
    stderr: cut(run.stderr),
    stdoutBytes: run.stdoutBytes,
    stderrBytes: run.stderrBytes,
  };
}
