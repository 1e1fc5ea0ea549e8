/**
 * How one connection attempt of the library ends, for the tests of lib/mqtt.ts: `openMqtt` then
 * `connected`, and the client closed again whatever happened.
 *
 * @module
 */

import assert from "node:assert/strict";
import { BrokerError, type BrokerOptions, connected, openMqtt } from "../lib/mqtt.ts";

/**
 * Connects to `broker` and hangs up: resolves with `undefined` once connected, or with the
 * `BrokerError` the attempt ended in (asserted to be one, in one line).
 */
export async function connectOutcome(broker: BrokerOptions): Promise<BrokerError | undefined> {
  const client = openMqtt(broker, { clientId: `broker-test-${crypto.randomUUID()}` });
  try {
    await connected(client, broker);
    assert.equal(client.connected, true);
    return undefined;
  } catch (error) {
    assert.ok(error instanceof BrokerError, String(error));
    assert.ok(!error.message.includes("\n"), `one line: ${JSON.stringify(error.message)}`);
    return error;
  } finally {
    await client.endAsync(true);
  }
}
