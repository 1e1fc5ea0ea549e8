import assert from "node:assert/strict";
import { pemDecode, pemEncode, PemError } from "../../lib/crypto/pem.ts";

const bytes = Uint8Array.from({ length: 200 }, (_, i) => (i * 37) & 0xff);
const pem = pemEncode("PUBLIC KEY", bytes);

const rejects = (text: string, message: RegExp, label = "PUBLIC KEY") =>
  assert.throws(
    () => pemDecode(text, label),
    (e) => e instanceof PemError && message.test(e.message),
  );

Deno.test("encodes 64-character lines and a trailing newline", () => {
  const lines = pem.split("\n");
  assert.equal(lines[0], "-----BEGIN PUBLIC KEY-----");
  assert.deepEqual(lines.slice(1, -2).map((l) => l.length), [64, 64, 64, 64, 12]);
  assert.equal(lines.at(-2), "-----END PUBLIC KEY-----");
  assert.equal(lines.at(-1), "");
  assert.equal(
    pemEncode("X", Uint8Array.of(0x30, 0)),
    "-----BEGIN X-----\nMAA=\n-----END X-----\n",
  );
});

Deno.test("round-trips at every body length around line breaks", () => {
  for (let n = 1; n <= 100; n++) {
    const data = bytes.subarray(0, n);
    assert.deepEqual(pemDecode(pemEncode("DH PARAMETERS", data), "DH PARAMETERS"), data);
  }
});

Deno.test("tolerates CRLF, surrounding whitespace and other line lengths", () => {
  assert.deepEqual(pemDecode(pem.replaceAll("\n", "\r\n"), "PUBLIC KEY"), bytes);
  assert.deepEqual(pemDecode(`\n \t${pem}\n\n  `, "PUBLIC KEY"), bytes);
  const body = bytes.toBase64();
  const oneLine = `-----BEGIN PUBLIC KEY-----\n${body}\n-----END PUBLIC KEY-----`;
  assert.deepEqual(pemDecode(oneLine, "PUBLIC KEY"), bytes);
  const short = body.match(/.{1,10}/g)!.join("\n");
  assert.deepEqual(
    pemDecode(`-----BEGIN PUBLIC KEY-----\n${short}\n-----END PUBLIC KEY-----\n`, "PUBLIC KEY"),
    bytes,
  );
});

Deno.test("rejects a missing or mismatched label", () => {
  rejects(pem, /wrong PEM label, expected "DH PARAMETERS"/, "DH PARAMETERS");
  rejects(pem.replace("-----BEGIN PUBLIC KEY-----\n", ""), /missing BEGIN/);
  rejects(pem.replace("-----END PUBLIC KEY-----\n", ""), /missing END/);
  rejects(pem.replace("END PUBLIC KEY", "END PRIVATE KEY"), /does not match/);
  rejects("", /missing BEGIN/);
  rejects("-----BEGIN PUBLIC KEY-----", /missing END/);
  rejects("junk\n" + pem, /missing BEGIN/);
  rejects(pem + "junk\n", /missing END/);
  rejects(pem + pem, /more than one/);
});

Deno.test("rejects bad base64 and an empty body", () => {
  const [begin, ...rest] = pem.split("\n");
  const withBody = (body: string) => `${begin}\n${body}\n${rest.at(-2)}\n`;
  rejects(withBody("AQID!"), /invalid base64/);
  rejects(withBody("AQ"), /invalid base64/); // missing padding
  rejects(withBody("AR=="), /invalid base64/); // non-zero bits after the last byte
  rejects(withBody("AQ==AQ=="), /invalid base64/);
  rejects(withBody("AQ-_"), /invalid base64/); // base64url is not PEM's alphabet
  rejects(withBody("AQ ID"), /invalid base64/);
  rejects(`${begin}\n${rest.at(-2)}\n`, /empty body/);
  rejects(withBody(""), /empty body/);
});

Deno.test("rejects invalid labels, and encoding nothing", () => {
  assert.throws(() => pemEncode("-BAD", bytes), PemError);
  assert.throws(() => pemEncode("TWO  SPACES", bytes), PemError);
  assert.throws(() => pemDecode(pem, ""), PemError);
  assert.throws(() => pemEncode("X", new Uint8Array()), /empty body/);
});
