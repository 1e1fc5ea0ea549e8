/**
 * PEM armour (RFC 7468): DER bytes as base64 between BEGIN/END lines.
 *
 * Encoding emits the strict form every parser accepts (64-character lines, "\n" line ends, a
 * final newline), which is what OpenSSL and pyca/cryptography emit, so our bytes match theirs.
 * Decoding follows RFC 7468 §3's "be liberal" only where harmless (CRLF, whitespace around and
 * inside the block) and refuses anything that could make one text mean two things: a wrong
 * or missing label, stray text, more than one block, non-canonical base64, an empty body.
 *
 * @example
 * ```ts
 * import { pemDecode, pemEncode } from "./pem.ts";
 * const pem = pemEncode("PUBLIC KEY", Uint8Array.of(1, 2, 3));
 * console.log(pemDecode(pem, "PUBLIC KEY")); // Uint8Array [1, 2, 3]
 * ```
 * @module
 */

/**
 * Every PEM failure: bad label, bad armour, bad base64. The message never echoes the body.
 *
 * @example
 * ```ts
 * import { pemDecode, PemError } from "./pem.ts";
 * try {
 *   pemDecode("-----BEGIN X-----\nAQID\n-----END X-----\n", "PUBLIC KEY");
 * } catch (error) {
 *   if (!(error instanceof PemError)) throw error;
 *   console.log(error.message); // 'wrong PEM label, expected "PUBLIC KEY"'
 * }
 * ```
 */
export class PemError extends Error {
  /**
   * `message`: a short reason, never the input's contents.
   *
   * @example
   * ```ts
   * import { PemError } from "./pem.ts";
   * throw new PemError("empty body");
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "PemError";
  }
}

// RFC 7468 §3 "label": printable characters without "-", single spaces between words.
const LABEL = /^[\x21-\x2c\x2e-\x7e]+( [\x21-\x2c\x2e-\x7e]+)*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function checkLabel(label: string): void {
  if (!LABEL.test(label)) throw new PemError("invalid PEM label");
}

/**
 * Wraps `der` as a PEM block: 64-character base64 lines, ending with "\n".
 *
 * @example
 * ```ts
 * import { pemEncode } from "./pem.ts";
 * pemEncode("PUBLIC KEY", Uint8Array.of(0x30, 0x00));
 * // "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n"
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

/**
 * Unwraps exactly one PEM block labelled `label` and returns its bytes. Surrounding whitespace
 * and CRLF line ends are accepted; anything else around the block is not.
 *
 * @example
 * ```ts
 * import { pemDecode } from "./pem.ts";
 * pemDecode("\r\n-----BEGIN X-----\r\nAQID\r\n-----END X-----\r\n", "X"); // Uint8Array [1, 2, 3]
 * ```
 */
export function pemDecode(text: string, label: string): Uint8Array<ArrayBuffer> {
  checkLabel(label);
  const lines = text.trim().split("\n").map((line) => line.trim());
  const begin = `-----BEGIN ${label}-----`;
  if (lines[0] !== begin) {
    throw new PemError(
      lines[0].startsWith("-----BEGIN ") ? `wrong PEM label, expected "${label}"` : "missing BEGIN",
    );
  }
  if (lines.length < 2 || !lines[lines.length - 1].startsWith("-----END ")) {
    throw new PemError("missing END");
  }
  if (lines[lines.length - 1] !== `-----END ${label}-----`) {
    throw new PemError("END label does not match BEGIN");
  }
  const body = lines.slice(1, -1).join("");
  if (body.includes("-----")) throw new PemError("more than one PEM block");
  if (body.length === 0) throw new PemError("empty body");
  // fromBase64 alone would skip inner whitespace and, being "loose", accept missing padding.
  if (!BASE64.test(body)) throw new PemError("invalid base64");
  try {
    return Uint8Array.fromBase64(body, { lastChunkHandling: "strict" });
  } catch {
    throw new PemError("invalid base64");
  }
}
