/**
 * deploy/secure_mqtt_responder.service: `systemd-analyze verify` finds nothing to say about it
 * (an unknown or misspelt setting is only a warning there, so any output fails), and
 * `systemd-analyze security` rates its exposure at 2.0 or below ("OK"). Verify wants the
 * ExecStart binary to exist: it checks a copy that starts a stub instead, the unit otherwise as
 * shipped. Skips without systemd-analyze (Debian's systemd package), except under CI=true.
 */

import assert from "node:assert/strict";
import { skipUnless } from "../../support/environment.ts";
import { ROOT } from "../../support/processes.ts";

const UNIT = `${ROOT}/deploy/secure_mqtt_responder.service`;
const BINARY = "/usr/local/bin/secure_mqtt_responder";
const ANALYZE = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].find(isExecutable);

function isExecutable(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

const ignore = skipUnless(
  "systemd-analyze",
  () => ANALYZE === undefined ? "systemd-analyze not found (apt-get install systemd)" : undefined,
) !== undefined;

/** `systemd-analyze args` on a copy of `unit` whose ExecStart binary is a stub. */
async function analyze(
  args: string[],
  unit: string,
): Promise<Deno.CommandOutput & { text: string }> {
  if (ANALYZE === undefined) throw new Error("systemd-analyze not found (apt-get install systemd)");
  const dir = await Deno.makeTempDir({ prefix: "unit-" });
  try {
    const stub = `${dir}/secure_mqtt_responder`;
    await Deno.writeTextFile(stub, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    assert.ok(unit.includes(`ExecStart=${BINARY} `), "the unit starts something else");
    const copy = `${dir}/secure_mqtt_responder.service`;
    await Deno.writeTextFile(copy, unit.replaceAll(`ExecStart=${BINARY} `, `ExecStart=${stub} `));
    const out = await new Deno.Command(ANALYZE, {
      args: [...args, copy],
      env: { SYSTEMD_LOG_COLOR: "0", SYSTEMD_PAGER: "" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    return { ...out, text: (decode(out.stdout) + decode(out.stderr)).replaceAll(dir, "<dir>") };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "the systemd unit passes systemd-analyze verify without a word",
  ignore,
  async fn() {
    const run = await analyze(["verify", "--man=no"], await Deno.readTextFile(UNIT));
    assert.equal(run.code, 0, run.text);
    assert.equal(run.text.trim(), "");
  },
});

Deno.test({
  name:
    "systemd-analyze verify does speak up about a misspelt setting (so silence means something)",
  ignore,
  async fn() {
    const unit = (await Deno.readTextFile(UNIT)).replace("NoNewPrivileges=", "NoNewPrivilege=");
    const run = await analyze(["verify", "--man=no"], unit);
    assert.match(run.text, /Unknown key 'NoNewPrivilege'/);
  },
});

Deno.test({
  name: "the systemd unit's exposure, by systemd-analyze security, is 2.0 or below",
  ignore,
  async fn() {
    const unit = await Deno.readTextFile(UNIT);
    const run = await analyze(["security", "--offline=yes", "--threshold=20", "--no-pager"], unit);
    const level = /Overall exposure level for .*: (\d+\.\d)/.exec(run.text)?.[1];
    assert.ok(level !== undefined, run.text);
    assert.ok(Number(level) <= 2.0, `exposure ${level}:\n${run.text}`);
    assert.equal(run.code, 0, run.text);
    // Without the hardening, the same unit is rated exposed: the rating looks at what we set.
    const bare = unit.replace(/^# Hardening[\s\S]*?(?=^\[Install\])/m, "");
    const loose = await analyze(["security", "--offline=yes", "--no-pager"], bare);
    const looseLevel = /Overall exposure level for .*: (\d+\.\d)/.exec(loose.text)?.[1];
    assert.ok(Number(looseLevel) > 5, `exposure without the hardening: ${looseLevel}`);
  },
});
