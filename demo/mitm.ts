/**
 * The man in the middle that `deno task demo --mitm` plays on its own broker: it answers each
 * side of a key exchange with a key of its own, so that it holds one session key with the
 * client and another with the responder, then reads every request and rewrites every answer.
 * Against the lab protocol this works; against a client that checks the responder's signature
 * (docs/protocol.md, "Authenticated key exchange") it gets nothing to read.
 *
 * @module
 */

import { type DhGroup, encodePublicKeyPem, generateKeyPair } from "../lib/crypto/dh.ts";
import type { Fernet } from "../lib/crypto/fernet.ts";
import { readPeerPublicKey, SessionSecret } from "../lib/protocol/key_agreement.ts";
import { KEY_EXCHANGE } from "../lib/protocol/topics.ts";
import type { Interceptor } from "../lib/embedded_broker.ts";

/** What the attacker did, one line an event, for the demo to show. */
export type Report = (line: string) => void;

interface Victim {
  /** The session key the client believes it shares with the responder. */
  withClient?: Fernet;
  /** The one the responder believes it shares with the client. */
  withResponder?: Fernet;
  /** The attacker's key pairs for each side. */
  towardResponder: ReturnType<typeof generateKeyPair>;
  towardClient: ReturnType<typeof generateKeyPair>;
  /** The client's real public key, until the responder's arrives. */
  clientY?: bigint;
  requestsRead: number;
}

const encoder = new TextEncoder();
// The attacker reads and rewrites texts as they are: a U+FEFF first is kept, as the ends keep it.
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * An {@linkcode Interceptor} for the embedded broker that attacks every netid's exchange.
 * `forge` makes the answer the client will get from the real one.
 */
export function manInTheMiddle(
  group: DhGroup,
  report: Report,
  forge: (answer: string) => string,
): Interceptor & { requestsRead(): number } {
  const victims = new Map<string, Victim>();
  const victim = (netid: string) => {
    let v = victims.get(netid);
    if (v === undefined) {
      v = {
        towardResponder: generateKeyPair(group),
        towardClient: generateKeyPair(group),
        requestsRead: 0,
      };
      victims.set(netid, v);
    }
    return v;
  };
  const intercept: Interceptor = async (topic, payload) => {
    const [netid, action, direction] = topic.split("/");
    if (netid === undefined || direction === undefined) return undefined;
    const v = victim(netid);
    if (action === KEY_EXCHANGE && direction === "request") {
      v.clientY = readPeerPublicKey(group, payload).y;
      report(`replaced the client's public key on ${topic} with its own`);
      return encoder.encode(encodePublicKeyPem(group, v.towardResponder.publicKey));
    }
    if (action === KEY_EXCHANGE && direction === "response" && v.clientY !== undefined) {
      const responderY = readPeerPublicKey(group, payload).y;
      v.withResponder = await SessionSecret.agree(group, v.towardResponder, responderY).labFernet();
      v.withClient = await SessionSecret.agree(group, v.towardClient, v.clientY).labFernet();
      report(`replaced the responder's public key on ${topic} with its own`);
      return encoder.encode(encodePublicKeyPem(group, v.towardClient.publicKey));
    }
    if (action === KEY_EXCHANGE && direction === "signature") {
      report(`let the signature on ${topic} through: it cannot make one of its own`);
      return undefined;
    }
    if (direction === "request" && v.withClient && v.withResponder) {
      const text = utf8.decode(await v.withClient.decrypt(payload));
      v.requestsRead++;
      report(`READ the request on ${topic}: ${JSON.stringify(text)}`);
      return encoder.encode(await v.withResponder.encrypt(text));
    }
    if (direction === "response" && v.withClient && v.withResponder) {
      const answer = utf8.decode(await v.withResponder.decrypt(payload));
      const forged = forge(answer);
      report(
        `READ the answer on ${topic}: ${JSON.stringify(answer)}; sent ${JSON.stringify(forged)}`,
      );
      return encoder.encode(await v.withClient.encrypt(forged));
    }
    return undefined;
  };
  return Object.assign(intercept, {
    requestsRead: () => [...victims.values()].reduce((n, v) => n + v.requestsRead, 0),
  });
}
