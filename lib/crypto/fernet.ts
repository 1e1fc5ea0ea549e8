/**
 * Fernet symmetric tokens (https://github.com/fernet/spec), after pyca/cryptography's
 * fernet.py: one error type, checks in the same order, and the MAC verified before anything is
 * decrypted, so a forged token learns nothing but "invalid token".
 *
 * Token: base64url(0x80 ‖ timestamp (u64 BE seconds) ‖ IV (16) ‖ AES-128-CBC-PKCS#7(data) ‖
 * HMAC-SHA256(signing key, all of the above)), padded, as pyca refuses unpadded tokens.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Fernet, InvalidToken } from "./fernet.ts";
 * const f = await Fernet.fromBase64Key(Fernet.generateKey());
 * const token = await f.encrypt("hello");
 * assert.equal(new TextDecoder().decode(await f.decrypt(token)), "hello");
 * const other = await Fernet.fromBase64Key(Fernet.generateKey());
 * await assert.rejects(other.decrypt(token), InvalidToken);
 * ```
 * @module
 */

/**
 * Every token that does not decrypt, whatever the reason; the message is always exactly
 * "invalid token" so that no failure mode can be told from another.
 */
export class InvalidToken extends Error {
  override name = "InvalidToken";
  /** Always "invalid token". */
  constructor() {
    super("invalid token");
  }
}

const VERSION = 0x80;
const HEADER = 1 + 8 + 16; // version, timestamp, IV
const MAC = 32;
const BLOCK = 16;
/** pyca's _MAX_CLOCK_SKEW: a token from further in the future than this is refused. */
const MAX_CLOCK_SKEW = 60n;

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Options for {@linkcode Fernet.encrypt}. */
export interface FernetEncryptOptions {
  /**
   * Seconds since the epoch to stamp; default now. pyca's encrypt_at_time: the only input
   * besides the data that a caller may choose (the IV is always fresh).
   */
  timestamp?: number;
}

/** Options for {@linkcode Fernet.decrypt}. */
export interface FernetDecryptOptions {
  /** Maximum token age in seconds; default unlimited. */
  ttl?: number;
  /** Current time in seconds since the epoch; default now. */
  now?: number;
}

function decodeToken(token: string | Uint8Array): Uint8Array<ArrayBuffer> {
  const text = typeof token === "string" ? token : new TextDecoder().decode(token);
  let data: Uint8Array<ArrayBuffer>;
  try {
    // Strict: pyca refuses unpadded tokens, so accepting them here would only hide a bug.
    data = Uint8Array.fromBase64(text, { alphabet: "base64url", lastChunkHandling: "strict" });
  } catch {
    throw new InvalidToken();
  }
  // Spec: version byte, then a whole number (>= 1) of cipher blocks between header and MAC.
  const body = data.length - HEADER - MAC;
  if (data[0] !== VERSION || body < BLOCK || body % BLOCK !== 0) throw new InvalidToken();
  return data;
}

/**
 * A Fernet key: HMAC-SHA256 signing key (bytes 0-15) and AES-128-CBC key (bytes 16-31), held
 * as non-extractable Web Crypto keys.
 */
export class Fernet {
  #signingKey: CryptoKey;
  #encryptionKey: CryptoKey;

  private constructor(signingKey: CryptoKey, encryptionKey: CryptoKey) {
    this.#signingKey = signingKey;
    this.#encryptionKey = encryptionKey;
  }

  /** A Fernet from 32 raw key bytes (e.g. from deriveFernetKey); TypeError otherwise. */
  static async create(key: Uint8Array): Promise<Fernet> {
    if (!(key instanceof Uint8Array) || key.length !== 32) {
      throw new TypeError("Fernet key must be 32 bytes");
    }
    const [signingKey, encryptionKey] = await Promise.all([
      crypto.subtle.importKey("raw", key.slice(0, 16), { name: "HMAC", hash: "SHA-256" }, false, [
        "sign",
        "verify",
      ]),
      crypto.subtle.importKey("raw", key.slice(16), "AES-CBC", false, ["encrypt", "decrypt"]),
    ]);
    return new Fernet(signingKey, encryptionKey);
  }

  /**
   * A Fernet from the padded url-safe base64 text of 32 bytes, the form pyca's `Fernet(key)`
   * takes; TypeError otherwise.
   */
  static async fromBase64Key(key: string): Promise<Fernet> {
    let raw: Uint8Array;
    try {
      raw = Uint8Array.fromBase64(key, { alphabet: "base64url", lastChunkHandling: "strict" });
    } catch {
      throw new TypeError("Fernet key must be 32 url-safe base64-encoded bytes");
    }
    if (raw.length !== 32) {
      throw new TypeError("Fernet key must be 32 url-safe base64-encoded bytes");
    }
    return await Fernet.create(raw);
  }

  /** A fresh random key as padded url-safe base64, like pyca's `Fernet.generate_key()`. */
  static generateKey(): string {
    return crypto.getRandomValues(new Uint8Array(32)).toBase64({ alphabet: "base64url" });
  }

  /**
   * Encrypts `data` (a string is taken as UTF-8) into a padded base64url token, with a fresh
   * random IV.
   */
  async encrypt(data: Uint8Array | string, options: FernetEncryptOptions = {}): Promise<string> {
    const { timestamp = nowSeconds() } = options;
    if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
      throw new RangeError("Fernet timestamp must be a non-negative integer (seconds)");
    }
    const iv = crypto.getRandomValues(new Uint8Array(16));
    const plaintext = typeof data === "string" ? new TextEncoder().encode(data) : data;
    // Web Crypto's AES-CBC applies PKCS#7 padding itself.
    const ciphertext = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-CBC", iv },
        this.#encryptionKey,
        plaintext as BufferSource,
      ),
    );
    const token = new Uint8Array(HEADER + ciphertext.length + MAC);
    token[0] = VERSION;
    new DataView(token.buffer).setBigUint64(1, BigInt(timestamp));
    token.set(iv, 9);
    token.set(ciphertext, HEADER);
    const signed = token.subarray(0, HEADER + ciphertext.length);
    const mac = await crypto.subtle.sign("HMAC", this.#signingKey, signed);
    token.set(new Uint8Array(mac), signed.length);
    return token.toBase64({ alphabet: "base64url" });
  }

  /**
   * Verifies and decrypts a token; every failure is {@linkcode InvalidToken}. Like pyca, with
   * `ttl` a token older than that, or stamped more than 60 s in the future, is refused.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Fernet, InvalidToken } from "./fernet.ts";
   * const f = await Fernet.fromBase64Key(Fernet.generateKey());
   * const token = await f.encrypt("hi", { timestamp: 1_000 });
   * assert.ok(await f.decrypt(token, { ttl: 60, now: 1_060 })); // 60 s old: still fresh
   * await assert.rejects(f.decrypt(token, { ttl: 60, now: 1_061 }), InvalidToken);
   * ```
   */
  async decrypt(
    token: string | Uint8Array,
    options: FernetDecryptOptions = {},
  ): Promise<Uint8Array> {
    const { ttl, now = nowSeconds() } = options;
    if (!Number.isSafeInteger(now) || (ttl !== undefined && !Number.isSafeInteger(ttl))) {
      throw new RangeError("Fernet ttl and now must be integers (seconds)");
    }
    const data = decodeToken(token);
    // As in pyca, the timestamp checks come first: it is plaintext, so they reveal nothing.
    const timestamp = new DataView(data.buffer).getBigUint64(1);
    // Only with a ttl, as in pyca: without one, a peer whose clock runs ahead must still work.
    if (ttl !== undefined) {
      if (timestamp + BigInt(ttl) < BigInt(now)) throw new InvalidToken();
      if (BigInt(now) + MAX_CLOCK_SKEW < timestamp) throw new InvalidToken();
    }
    const signed = data.subarray(0, data.length - MAC);
    // crypto.subtle.verify compares in constant time; nothing is decrypted before it passes.
    const ok = await crypto.subtle.verify(
      "HMAC",
      this.#signingKey,
      data.subarray(signed.length),
      signed,
    );
    if (!ok) throw new InvalidToken();
    try {
      return new Uint8Array(
        await crypto.subtle.decrypt(
          { name: "AES-CBC", iv: data.subarray(9, HEADER) },
          this.#encryptionKey,
          data.subarray(HEADER, signed.length),
        ),
      );
    } catch {
      throw new InvalidToken();
    }
  }
}
