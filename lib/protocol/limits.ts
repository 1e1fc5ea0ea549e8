/**
 * The protocol's size limits: what the client sends and the responder accepts, checked before
 * anything is decoded, so that no payload costs more work than its use is worth.
 *
 * @module
 */

/**
 * Largest message, in UTF-8 bytes, that the client sends and the responder accepts. Its token
 * is about 1.4 MiB, well inside a default mosquitto's limits.
 */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/**
 * Largest answer payload a client takes: the token of the longest answer to a maximal message.
 * An answer can hold three times the message's UTF-8 bytes (upper-casing U+0390 makes three code
 * points of it, 2 bytes into 6; `random` at most doubles), and a Fernet token is base64, 4/3 of
 * its plaintext and a header: 4 MiB and about a hundred bytes.
 */
export const MAX_ANSWER_PAYLOAD_BYTES = 4 * 1024 * 1024 + 4096;

/** Largest request or answer payload worth decoding: a maximal message's token, with room. */
export const MAX_PAYLOAD_BYTES = 2 * 1024 * 1024;

/** Largest PEM public key worth parsing (ours is about 1.5 KiB). */
export const MAX_PUBLIC_KEY_PEM_BYTES = 8 * 1024;

/** Longest netid, in UTF-8 bytes: far beyond any real one, and short enough to log. */
export const MAX_NETID_BYTES = 1024;
