/**
 * The responder's identity key on disk, kept as SSH keeps its keys: made with mode 0600 and
 * never over an existing file, and loaded only from a private regular file of sane size.
 * `--trust` rests on this key alone: a copy in a student's hands defeats it.
 *
 * @module
 */

import { Identity, IdentityError } from "../lib/auth/identity.ts";
import { decodeUtf8 } from "../lib/utf8.ts";
import { UsageError } from "./args.ts";
import { describeFsError } from "./broker_options.ts";

/** The largest identity file worth reading: a PKCS#8 Ed25519 PEM is 119 bytes. */
export const MAX_IDENTITY_FILE_BYTES = 64 * 1024;

/**
 * Loads the identity in `path`, refusing at once, each with one line that says what to do: a
 * path that is not a regular file (a directory, a FIFO that would block, a device such as
 * /dev/zero that never ends), a file that group or others may access, a file over
 * {@linkcode MAX_IDENTITY_FILE_BYTES}, and anything but one Ed25519 private key.
 * Throws {@linkcode UsageError}.
 */
export async function readIdentityFile(path: string): Promise<Identity> {
  const refuse = (why: string, options?: ErrorOptions): never => {
    throw new UsageError(`argument --identity: ${why}`, options);
  };
  let info: Deno.FileInfo;
  try {
    // stat, not open: opening a FIFO with no writer would block until one comes.
    info = await Deno.stat(path);
  } catch (error) {
    refuse(`cannot read '${path}': ${describeFsError(error)}`, { cause: error });
  }
  checkRegularFile(path, info!, refuse);
  const mode = info!.mode;
  // Any access for group or others, as OpenSSH refuses a private key (mode is null on Windows).
  if (mode !== null && (mode & 0o077) !== 0) {
    refuse(
      `'${path}' can be accessed by other users (mode ${octal(mode)}), so anyone may copy ` +
        `the identity and defeat --trust: make it private with chmod 600 '${path}'`,
    );
  }
  let bytes: Uint8Array;
  try {
    using file = await Deno.open(path, { read: true });
    // The path may have been swapped since the stat: check what was opened.
    checkRegularFile(path, await file.stat(), refuse);
    bytes = await readAtMost(file, MAX_IDENTITY_FILE_BYTES + 1);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    refuse(`cannot read '${path}': ${describeFsError(error)}`, { cause: error });
  }
  if (bytes!.length > MAX_IDENTITY_FILE_BYTES) refuse(tooLarge(path));
  const text = decodeUtf8(bytes!);
  if (text === undefined) refuse(`'${path}' is not a PEM private key (not UTF-8 text)`);
  try {
    return await Identity.fromPem(text!);
  } catch (error) {
    if (!(error instanceof IdentityError)) throw error;
    return refuse(`${path} ${error.message}`, { cause: error });
  }
}

/**
 * Makes a new identity and writes its private key to `path`, which must not exist yet: it is
 * created with mode 0600, so that it is private from its first byte. `-` writes it to
 * standard output instead, unless that is a terminal (a private key on a screen is no longer
 * private). Returns the identity; throws {@linkcode UsageError}.
 */
export async function writeNewIdentity(
  path: string,
  stdout: { isTerminal(): boolean; write(p: Uint8Array): Promise<number> } = Deno.stdout,
): Promise<Identity> {
  const { identity, pem } = await Identity.generate();
  const bytes = new TextEncoder().encode(pem);
  if (path === "-") {
    if (stdout.isTerminal()) {
      throw new UsageError(
        "argument --new-identity: standard output is a terminal: a private key must not be " +
          "shown on screen; give a FILE to write it to",
      );
    }
    await writeAll(stdout, bytes);
    return identity;
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) {
      throw new UsageError(
        `argument --new-identity: '${path}' exists, and is not replaced (clients may trust ` +
          "its fingerprint already): remove it first, or name a new file",
        { cause: error },
      );
    }
    throw new UsageError(
      `argument --new-identity: cannot create '${path}': ${describeFsError(error)}`,
      { cause: error },
    );
  }
  try {
    await writeAll(file, bytes);
    await file.sync();
  } catch (error) {
    file.close();
    await Deno.remove(path).catch(() => {});
    throw new UsageError(
      `argument --new-identity: cannot write '${path}': ${describeFsError(error)}`,
      { cause: error },
    );
  }
  file.close();
  return identity;
}

function checkRegularFile(
  path: string,
  info: Deno.FileInfo,
  refuse: (why: string) => never,
): void {
  if (info.isFile) return;
  const what = info.isDirectory
    ? "a directory"
    : info.isFifo
    ? "a FIFO"
    : info.isCharDevice || info.isBlockDevice
    ? "a device"
    : info.isSocket
    ? "a socket"
    : "not a regular file";
  refuse(`'${path}' is ${what}: --identity needs the regular file of an Ed25519 private key`);
}

function tooLarge(path: string): string {
  return `'${path}' is over ${MAX_IDENTITY_FILE_BYTES / 1024} KiB: not an identity file ` +
    "(an Ed25519 private key PEM is 119 bytes)";
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, "0")}`;
}

/** Reads until the end or `limit` bytes, whichever comes first. */
async function readAtMost(file: Deno.FsFile, limit: number): Promise<Uint8Array> {
  const buffer = new Uint8Array(limit);
  let filled = 0;
  while (filled < limit) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return buffer.subarray(0, filled);
}

async function writeAll(
  to: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  while (bytes.length > 0) bytes = bytes.subarray(await to.write(bytes));
}
