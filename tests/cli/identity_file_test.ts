/**
 * cli/identity_file.ts: the identity file kept as SSH keeps a key. Made with mode 0600 and
 * never over an existing file, never shown on a terminal; loaded only from a private regular
 * file of sane size, and every refusal is at once, in one line that says what to do.
 */

import assert from "node:assert/strict";
import { Identity } from "../../lib/auth/identity.ts";
import { UsageError } from "../../cli/args.ts";
import {
  MAX_IDENTITY_FILE_BYTES,
  readIdentityFile,
  writeNewIdentity,
} from "../../cli/identity_file.ts";

async function refused(promise: Promise<unknown>, reason: RegExp): Promise<string> {
  let message = "";
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof UsageError, String(error));
    assert.ok(!error.message.includes("\n"), "one line");
    assert.match(error.message, reason);
    message = error.message;
    return true;
  });
  return message;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "identity-file-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("writeNewIdentity: a new file, mode 0600 whatever the umask, that loads back", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/identity.pem`;
    const before = Deno.umask(0o000); // the loosest umask: the mode must still be 0600
    let identity: Identity;
    try {
      identity = await writeNewIdentity(path);
    } finally {
      Deno.umask(before);
    }
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal((await readIdentityFile(path)).fingerprint, identity.fingerprint);
  });
});

Deno.test("writeNewIdentity: an existing file is never replaced", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/identity.pem`;
    const first = await writeNewIdentity(path);
    const line = await refused(writeNewIdentity(path), /^argument --new-identity: '.*' exists/);
    assert.match(line, /remove it first, or name a new file$/);
    assert.equal((await readIdentityFile(path)).fingerprint, first.fingerprint, "still the first");
    await Deno.writeTextFile(`${dir}/other`, "not a key");
    await refused(writeNewIdentity(`${dir}/other`), /exists/);
    assert.equal(await Deno.readTextFile(`${dir}/other`), "not a key");
    await refused(writeNewIdentity(`${dir}/missing/identity.pem`), /cannot create .*no such file/);
  });
});

Deno.test("writeNewIdentity '-': the key on stdout, but never on a terminal", async () => {
  const written: Uint8Array[] = [];
  const pipe = {
    isTerminal: () => false,
    write: (p: Uint8Array) => (written.push(p.slice()), Promise.resolve(p.length)),
  };
  const identity = await writeNewIdentity("-", pipe);
  const pem = new TextDecoder().decode(written[0]);
  assert.equal((await Identity.fromPem(pem)).fingerprint, identity.fingerprint);
  const terminal = { ...pipe, isTerminal: () => true };
  written.length = 0;
  await refused(writeNewIdentity("-", terminal), /standard output is a terminal/);
  assert.equal(written.length, 0, "nothing written");
});

Deno.test("readIdentityFile refuses a key that group or others may access", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/identity.pem`;
    const made = await writeNewIdentity(path);
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602, 0o660]) {
      await Deno.chmod(path, mode);
      const line = await refused(
        readIdentityFile(path),
        new RegExp(`can be accessed by other users \\(mode 0${mode.toString(8)}\\)`),
      );
      assert.ok(line.endsWith(`chmod 600 '${path}'`), line);
    }
    for (const mode of [0o600, 0o400, 0o700]) {
      await Deno.chmod(path, mode);
      assert.equal((await readIdentityFile(path)).fingerprint, made.fingerprint);
    }
    // A link to a private file is the private file.
    await Deno.chmod(path, 0o600);
    await Deno.symlink(path, `${dir}/link.pem`);
    assert.equal((await readIdentityFile(`${dir}/link.pem`)).fingerprint, made.fingerprint);
  });
});

Deno.test("readIdentityFile refuses at once what is not a regular file, or too large", async () => {
  await withDir(async (dir) => {
    await refused(readIdentityFile(dir), /is a directory: --identity needs the regular file/);
    await refused(readIdentityFile("/dev/zero"), /'\/dev\/zero' is a device/);
    await refused(readIdentityFile("/dev/null"), /is a device/);
    // A FIFO with no writer would block an open() until one came: refused before it.
    const fifo = `${dir}/fifo`;
    const made = await new Deno.Command("mkfifo", { args: ["-m", "600", fifo] }).output();
    assert.ok(made.success);
    await refused(readIdentityFile(fifo), /is a FIFO/);
    const big = `${dir}/big.pem`;
    await Deno.writeFile(big, new Uint8Array(MAX_IDENTITY_FILE_BYTES + 1).fill(0x41), {
      mode: 0o600,
    });
    await refused(readIdentityFile(big), /is over 64 KiB: not an identity file/);
    await refused(readIdentityFile(`${dir}/missing.pem`), /cannot read '.*missing\.pem': no such/);
  });
});

Deno.test("readIdentityFile: what is in the file must be one Ed25519 key, in UTF-8", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/key.pem`;
    await Deno.writeFile(path, Uint8Array.of(0xff, 0xfe), { mode: 0o600 });
    await refused(readIdentityFile(path), /not a PEM private key \(not UTF-8 text\)$/);
    await Deno.writeTextFile(path, "hello\n", { mode: 0o600 });
    await refused(readIdentityFile(path), new RegExp(`^argument --identity: ${path} is not a PEM`));
  });
});
