/**
 * The Python peers themselves (tests/peers/auth.py): their bound token keys, written from the
 * specification on pyca's HKDF, give the extension's known answers, and the same keys as ours
 * for a random shared secret. The peers test our code only as far as they are right.
 */

import assert from "node:assert/strict";
import { deriveBoundKey, deriveFernetKey, type TokenBinding } from "../../lib/crypto/hkdf.ts";
import { PYTHON, pythonPeersSkipReason } from "../../support/python.ts";
import { ROOT, runPeer } from "../../support/processes.ts";

const ignore = pythonPeersSkipReason() !== undefined;

/** `auth.py token-key Z_HEX ...`: the key (hex) the Python peer derives. */
async function pythonKey(z: Uint8Array, ...binding: string[]): Promise<string> {
  const run = await runPeer(PYTHON, [
    `${ROOT}/tests/peers/auth.py`,
    "token-key",
    z.toHex(),
    ...binding,
  ]);
  assert.equal(run.code, 0, run.stderr);
  return run.stdout.trim();
}

Deno.test({
  name: "auth.py: the bound token keys' known answers (Z = 512 bytes of 0x01)",
  ignore,
  async fn() {
    const z = new Uint8Array(512).fill(1);
    // The table of the extension's specification, as written there.
    assert.equal(
      await pythonKey(z, "lab"),
      "22cdf46f081e7d080182f37f3d8bdfde7d5c21db5a5cb005a88966253cffbcc7",
    );
    assert.equal(
      await pythonKey(z, "request", "le0nh4rt", "uppercase"),
      "53a98e432afd27e0dafd95fe01f283eea4795abb38dac83e9694c7d83acbfaf8",
    );
    assert.equal(
      await pythonKey(z, "response", "le0nh4rt", "uppercase"),
      "d902ef05a561d206f3c774d58bdc8512a15439962f90dc7f2f868c54fd3160bd",
    );
  },
});

Deno.test({
  name: "auth.py: the same keys as ours for a random Z, non-ASCII levels included",
  ignore,
  async fn() {
    const z = crypto.getRandomValues(new Uint8Array(512));
    const bindings: TokenBinding[] = [
      { direction: "request", netid: "le0nh4rt", action: "title-case" },
      { direction: "response", netid: "ünï-côdé", action: "reverse" },
      { direction: "response", netid: "a", action: "b" },
    ];
    for (const b of bindings) {
      const theirs = await pythonKey(z, b.direction, b.netid, b.action);
      assert.equal(theirs, (await deriveBoundKey(z, b)).toHex(), JSON.stringify(b));
    }
    assert.equal(await pythonKey(z, "lab"), (await deriveFernetKey(z)).toHex());
    // A direction the specification does not name is refused, not derived.
    const run = await runPeer(PYTHON, [
      `${ROOT}/tests/peers/auth.py`,
      ...["token-key", z.toHex(), "sideways", "a", "b"],
    ]);
    assert.equal(run.code, 2);
    assert.equal(run.stderr, "auth.py: direction must be request or response\n");
  },
});
