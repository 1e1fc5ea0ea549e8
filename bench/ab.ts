/**
 * Side-by-side end-to-end comparison of client checkouts, for before/after measurements of a
 * change: `main.ts` from each directory given, and bench/reference_client.py, interleaved on
 * one private mosquitto (default config unless `--nodelay`) with our responder (this tree's).
 *
 *     cp -r main.ts lib dhparam4096.pem deno.json /tmp/before   # before the change
 *     deno run -A bench/ab.ts --runs 21 /tmp/before .             # after it
 *
 * Prints, per client, the median wall time from spawn to exit and its ratio to the Python
 * client's median in the same run, then the median `-v` marks of each checkout.
 *
 * @module
 */

import {
  ANSWER,
  DENO,
  expectAnswer,
  median,
  MESSAGE,
  PYTHON,
  ROOT,
  Service,
  taskArgs,
  type Timed,
  timedRun,
} from "./bench.ts";
import { startMosquitto } from "../tests/support/mosquitto.ts";

const args = [...Deno.args];
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 1).length > 0 : false;
};
const option = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 2)[1] : fallback;
};
const runs = Number(option("--runs", "15"));
const nodelay = flag("--nodelay");
const dirs = args.length > 0 ? args : ["."];

await using broker = await startMosquitto(nodelay ? { config: "set_tcp_nodelay true" } : {});
const where = ["-p", String(broker.port), "--host", broker.host];
const responder = new Service(DENO, [...taskArgs("responder"), ...where]);
try {
  await responder.waitFor(/subscribed to/);
  const clients: [string, (verbose?: boolean) => Promise<Timed>][] = [
    ...dirs.map((dir): [string, (verbose?: boolean) => Promise<Timed>] => {
      const main = `${Deno.realPathSync(dir)}/main.ts`;
      const command = [...taskArgs("client").filter((a) => a !== "main.ts"), main];
      return [dir, (verbose = false) =>
        timedRun(DENO, [
          ...command,
          ...(verbose ? ["-v"] : []),
          ...where,
          "ab",
          "uppercase",
          MESSAGE,
        ])];
    }),
    [
      "python",
      () =>
        timedRun(PYTHON, [
          `${ROOT}/bench/reference_client.py`,
          ...where,
          "ab",
          "uppercase",
          MESSAGE,
        ]),
    ],
  ];
  const times = new Map<string, number[]>(clients.map(([name]) => [name, []]));
  const marks = new Map<string, string[][]>(dirs.map((dir) => [dir, []]));
  for (let i = -1; i < runs; i++) {
    for (const [name, run] of clients) {
      const r = await run();
      expectAnswer(name, r, ANSWER);
      if (i >= 0) times.get(name)!.push(r.ms);
    }
  }
  for (let i = 0; i < Math.min(runs, 7); i++) {
    for (const [name, run] of clients.slice(0, dirs.length)) {
      const r = await run(true);
      expectAnswer(name, r, ANSWER);
      marks.get(name)!.push([...r.stderr.matchAll(/([\d.]+) ms\)$/gm)].map((m) => m[1]));
    }
  }
  const python = median(times.get("python")!);
  console.log(
    `mosquitto ${
      nodelay ? "set_tcp_nodelay true" : "default config"
    }, ${runs} runs each, interleaved`,
  );
  for (const [name, xs] of times) {
    console.log(
      `${name.padEnd(24)} median ${median(xs).toFixed(1)} ms  ratio ${
        (median(xs) / python).toFixed(2)
      }x` +
        `  (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`,
    );
  }
  console.log(
    "-v marks (connected, SUBACK, kx sent, kx answered, request acked, answer verified):",
  );
  for (const [name, rows] of marks) {
    const columns = rows[0].map((_, c) => median(rows.map((r) => Number(r[c]))).toFixed(1));
    console.log(`${name.padEnd(24)} ${columns.join("  ")}`);
  }
} finally {
  await responder.stop();
}
