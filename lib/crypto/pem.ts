/**
 * PEM armour (RFC 7468): DER bytes as base64 between "-----BEGIN label-----" and
 * "-----END label-----" lines.
 *
 * We write the strict form (64-character lines, "\n" line ends, a final newline), which is what
 * OpenSSL and pyca/cryptography write. We read what pyca/cryptography 38 reads, no more and no
 * less, so that a key the lab's Python peer loads is not refused here, nor the other way round.
 * That is OpenSSL 3.0's reader, PEM_read_bio, as load_pem_public_key drives it; its rules, found
 * by testing pyca on a table of variants (tests/crypto/pem_test.ts), go well beyond RFC 7468 §3:
 *
 * - Lines end at "\n" ("\r\n" too, "\r" alone does not end a line) and are read at most 254
 *   bytes at a time, so a BEGIN line may start 254 bytes into a longer line. A leading UTF-8
 *   BOM is dropped, and so are trailing spaces, control characters and non-ASCII bytes.
 * - Text outside blocks is skipped. A block is "-----BEGIN label-----" up to the first line
 *   that starts with "-----END ", which must be "-----END label-----".
 * - Lines before a blank line are headers; without a blank line, a line with ":" makes the
 *   whole block headers. After a blank line, every base64 line but the last must be 64
 *   characters long; a second blank line is an error.
 * - The base64 may have spaces, tabs and "\r" anywhere and lines of any length, must come in
 *   whole 4-character groups, with at most two "=" and nothing but "=" after the first. Bits
 *   past the last byte are ignored, and so is everything after a "-" in the body.
 * - Which block: the first one whose bytes the caller accepts under its label, skipping blocks
 *   that fail to read and ignoring headers of ten characters or fewer, but going no further
 *   than a block with a longer header. Failing that, the first block with the label, if it has
 *   no header and every block before it reads. Those are the two passes OpenSSL 3.0 makes: its
 *   decoders, then its legacy reader.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pemDecode, pemEncode } from "./pem.ts";
 * const pem = pemEncode("PUBLIC KEY", Uint8Array.of(1, 2, 3));
 * assert.equal(pem, "-----BEGIN PUBLIC KEY-----\nAQID\n-----END PUBLIC KEY-----\n");
 * assert.deepEqual(pemDecode(`Our key:\n${pem}Regards`, "PUBLIC KEY"), Uint8Array.of(1, 2, 3));
 * ```
 * @module
 */

/** Every PEM failure: no block, bad label, bad armour, bad base64. Never echoes the input. */
export class PemError extends Error {
  override name = "PemError";
}

// RFC 7468 §3 "label": printable characters without "-", single spaces between words.
const LABEL = /^[\x21-\x2c\x2e-\x7e]+( [\x21-\x2c\x2e-\x7e]+)*$/;

function checkLabel(label: string): void {
  if (!LABEL.test(label)) throw new PemError("invalid PEM label");
}

/**
 * Wraps `der` as a PEM block: 64-character base64 lines, ending with "\n".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pemEncode } from "./pem.ts";
 * assert.equal(
 *   pemEncode("PUBLIC KEY", Uint8Array.of(0x30, 0x00)),
 *   "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n",
 * );
 * ```
 */
export function pemEncode(label: string, der: Uint8Array): string {
  checkLabel(label);
  if (der.length === 0) throw new PemError("empty body");
  const base64 = der.toBase64();
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += 64) lines.push(base64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

const BEGIN = "-----BEGIN ";
const END = "-----END ";
const DASHES = "-----";
/** OpenSSL reads lines with BIO_gets(bio, buffer, 255): at most 254 bytes at a time. */
const CHUNK = 254;
const BOM = "\xef\xbb\xbf";

/** The UTF-8 bytes of `text`, one char per byte, so that lengths and indices count bytes. */
function binary(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}

/** The input read as OpenSSL's BIO_gets reads it. */
class Chunks {
  #text: string;
  #pos = 0;
  constructor(text: string) {
    this.#text = text;
  }
  /** The next chunk: through the next "\n", at most 254 bytes; undefined at the end. */
  next(): string | undefined {
    if (this.#pos >= this.#text.length) return undefined;
    const window = this.#text.slice(this.#pos, this.#pos + CHUNK);
    const newline = window.indexOf("\n");
    const chunk = newline < 0 ? window : window.slice(0, newline + 1);
    this.#pos += chunk.length;
    return chunk;
  }
}

/**
 * A chunk without its line end and trailing bytes <= " ", compared as C's signed char, which
 * makes every byte >= 0x80 one of them too (OpenSSL's sanitize_line, EAY-compatible mode).
 */
function sanitize(chunk: string): string {
  let end = chunk.length;
  while (end > 0) {
    const c = chunk.charCodeAt(end - 1);
    if (c > 0x20 && c < 0x80) break;
    end--;
  }
  return chunk.slice(0, end);
}

/** C string semantics: where OpenSSL copies with strlen, text after a NUL is gone. */
const upToNul = (s: string) => {
  const nul = s.indexOf("\0");
  return nul < 0 ? s : s.slice(0, nul);
};

/** Skips to the next BEGIN line and returns its label; undefined when there is none. */
function readBegin(chunks: Chunks): string | undefined {
  for (let first = true;; first = false) {
    let chunk = chunks.next();
    if (chunk === undefined) return undefined;
    if (first && chunk.length > 3 && chunk.startsWith(BOM)) chunk = chunk.slice(3);
    const line = sanitize(chunk);
    if (line.startsWith(BEGIN) && line.endsWith(DASHES)) {
      return upToNul(line.slice(BEGIN.length, -DASHES.length));
    }
  }
}

/** One block as PEM_read_bio reads it, whatever its label. */
interface Block {
  readonly label: string;
  /** The lines before a blank line, each ending "\n"; usually empty. */
  readonly header: string;
  readonly der?: Uint8Array<ArrayBuffer>;
  /** Why the block cannot be read; then `der` is undefined. */
  readonly error?: PemError;
}

/** Reads from after the BEGIN line through the END line (OpenSSL's get_header_and_data). */
function readBody(chunks: Chunks, label: string): { header: string; data: string } {
  let header = "";
  let data = "";
  // A line with ":" before any blank line says there are headers; a blank line ends them.
  let state: "maybe-header" | "header" | "data" = "maybe-header";
  let partial = false;
  let lastLine = false;
  for (;;) {
    const chunk = chunks.next();
    if (chunk === undefined) throw new PemError("missing END line");
    // A line longer than a chunk goes on in the next one, whose "\n" is no blank line.
    const continues = partial;
    partial = chunk.length === CHUNK && !chunk.endsWith("\n");
    if (state === "maybe-header" && chunk.includes(":")) state = "header";
    const line = sanitize(chunk);
    if (line === "") {
      if (continues) continue;
      if (state === "data") throw new PemError("more than one blank line in PEM block");
      state = "data";
      continue;
    }
    if (line.startsWith(END)) {
      if (line !== `${END}${label}${DASHES}`) {
        throw new PemError("END line does not match BEGIN line");
      }
      return state === "maybe-header" ? { header: "", data: header } : { header, data };
    }
    if (lastLine) throw new PemError("short base64 line before the last one, after a header");
    const text = upToNul(line) + (line.includes("\0") ? "" : "\n");
    if (state !== "data") {
      header += text;
      continue;
    }
    data += text;
    // OpenSSL holds the lines after a header to 64 characters, the last one shorter.
    if (line.length > 64) throw new PemError("base64 line longer than 64 after a header");
    if (line.length < 64) lastLine = true;
  }
}

/** The body's bytes, as OpenSSL's EVP_DecodeUpdate and EVP_DecodeFinal see them. */
function decodeBase64(data: string): Uint8Array<ArrayBuffer> {
  // "-" is OpenSSL's end-of-data mark: nothing after it is read, not even to be refused.
  const dash = data.indexOf("-");
  const base64 = (dash < 0 ? data : data.slice(0, dash)).replace(/[ \t\r\n]/g, "");
  if (/[^A-Za-z0-9+/=]/.test(base64)) throw new PemError("invalid base64: bad character");
  const padding = base64.length - base64.replace(/=+$/, "").length;
  if (base64.slice(0, base64.length - padding).includes("=")) {
    throw new PemError("invalid base64: data after padding");
  }
  if (padding > 2) throw new PemError("invalid base64: too much padding");
  if (base64.length % 4) throw new PemError("invalid base64: incomplete final group");
  // Padding decodes as zero bits and its bytes are cut, so bits past the last byte are ignored.
  const bytes = Uint8Array.fromBase64(base64.replaceAll("=", "A"));
  return bytes.slice(0, bytes.length - padding);
}

/** Every block in `text`, in order, each read or refused as PEM_read_bio would. */
function* readBlocks(text: string): Generator<Block> {
  const chunks = new Chunks(binary(text));
  for (;;) {
    const label = readBegin(chunks);
    if (label === undefined) return;
    let header = "";
    try {
      const body = readBody(chunks, label);
      header = body.header;
      if (body.data === "") throw new PemError(header ? headerProblem(header) : "empty body");
      yield { label, header, der: decodeBase64(body.data) };
    } catch (e) {
      if (!(e instanceof PemError)) throw e;
      yield { label, header, error: e };
    }
  }
}

function headerProblem(header: string): string {
  if (/^Proc-Type:[ \t]*4,[ \t]*ENCRYPTED/.test(header)) return "encrypted PEM is not supported";
  return header.includes(":") ? "PEM headers are not supported" : "blank line inside PEM body";
}

/** OpenSSL 3.0's decoder reads past a header this short; a longer one stops it. */
const IGNORED_HEADER_LENGTH = 10;

/**
 * The bytes of the block labelled `label` that pyca/cryptography would load (see the module
 * doc). `accepts` says whether a block's bytes, under its label, decode as what the caller
 * wants, as OpenSSL's decoders would judge it (they take a DH key under "DH PARAMETERS", say);
 * by default any block labelled `label` does. When no block is accepted, this returns the
 * first block labelled `label` that OpenSSL's second pass would fail to decode, so that the
 * caller's own parser gives the reason; or it throws PemError with the reason that pass fails
 * before that: `missing BEGIN line`, `wrong PEM label, expected "..."`, `missing END line`,
 * `invalid base64: ...`, `empty body`, and so on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pemDecode, PemError } from "./pem.ts";
 * const crlf = "-----BEGIN X-----\r\nAQID\r\n-----END X-----\r\n";
 * assert.deepEqual(pemDecode(crlf, "X"), Uint8Array.of(1, 2, 3));
 * // A block that fails to read is skipped; one whose bytes are refused, too.
 * const two = "-----BEGIN X-----\nAQ!D\n-----END X-----\n" + crlf.replace("AQID", "BAUG");
 * const startsWithOne = (der: Uint8Array, label: string) => label === "X" && der[0] === 1;
 * assert.deepEqual(pemDecode(two + crlf, "X", startsWithOne), Uint8Array.of(1, 2, 3));
 * assert.throws(
 *   () => pemDecode("-----BEGIN X-----\nAQID\n", "X"),
 *   (e) => e instanceof PemError && e.message === "missing END line",
 * );
 * ```
 */
export function pemDecode(
  text: string,
  label: string,
  accepts: (der: Uint8Array<ArrayBuffer>, label: string) => boolean = (_, found) => found === label,
): Uint8Array<ArrayBuffer> {
  checkLabel(label);
  const blocks = [...readBlocks(text)];
  // OpenSSL's decoder: skips what it cannot read or decode, gives up at a longer header.
  for (const block of blocks) {
    if (block.der === undefined) continue;
    if (block.header.length > IGNORED_HEADER_LENGTH) break;
    if (block.der.length > 0 && accepts(block.der, block.label)) return block.der;
  }
  // Its legacy reader, from the start: stops at the first block it cannot read, skips other
  // labels, and decodes the first block with ours (header-free), or fails.
  for (const block of blocks) {
    if (block.der === undefined) throw block.error;
    if (block.label !== label) continue;
    if (block.header) throw new PemError(headerProblem(block.header));
    if (block.der.length === 0) throw new PemError("empty body");
    return block.der;
  }
  throw new PemError(
    blocks.length ? `wrong PEM label, expected "${label}"` : "missing BEGIN line",
  );
}
