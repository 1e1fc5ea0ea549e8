/**
 * cli/logger.ts in a process of its own (a Deno that imports it): the stderr logger writes
 * `name: level: message` lines, debug ones only when verbose, and a stderr nobody reads any more
 * does not stop the process.
 */

import assert from "node:assert/strict";

const LOG_MODULE = new URL("../../cli/logger.ts", import.meta.url).href;

/**
 * Starts a Deno that imports cli/logger.ts as `log` and runs `code`, with every stream piped.
 */
function spawnDeno(code: string): Deno.ChildProcess {
  const script = `import * as log from ${JSON.stringify(LOG_MODULE)};\n${code}`;
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", "--no-lock", "--ext=ts", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("stderrLogger writes name: level: message lines, debug only when verbose", async () => {
  const child = spawnDeno(`
for (const verbose of [false, true]) {
  const logger = log.stderrLogger("svc", verbose);
  logger.debug(\`detail \${verbose}\`);
  logger.info(\`event \${verbose}\`);
  logger.warn(\`trouble \${verbose}\`);
}
`);
  await child.stdin.close();
  const { code, stderr } = await child.output();
  assert.equal(code, 0);
  assert.equal(
    new TextDecoder().decode(stderr),
    "svc: event false\nsvc: warning: trouble false\n" +
      "svc: debug: detail true\nsvc: event true\nsvc: warning: trouble true\n",
  );
});

Deno.test("a stderr nobody reads any more does not stop the process", async () => {
  // The child waits for the end of its stdin, which comes only once the parent has closed its
  // end of the stderr pipe; its last line, written directly, shows that stderr was broken.
  const child = spawnDeno(`
await new Response(Deno.stdin.readable).arrayBuffer();
const logger = log.stderrLogger("svc", true);
for (let i = 0; i < 20; i++) {
  logger.info(\`line \${i}\`);
  logger.warn("trouble");
  logger.debug("detail");
}
let error = "none";
try {
  Deno.stderr.writeSync(new TextEncoder().encode("direct\\n"));
} catch (e) {
  error = e instanceof Deno.errors.BrokenPipe ? "BrokenPipe" : String(e);
}
console.log(\`logged; a direct write: \${error}\`);
`);
  await child.stderr.cancel();
  await child.stdin.close();
  const { code, stdout } = await child.output();
  assert.equal(new TextDecoder().decode(stdout), "logged; a direct write: BrokenPipe\n");
  assert.equal(code, 0);
});
