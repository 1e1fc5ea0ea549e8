/**
 * Test helper: a throwaway PKI made with the `openssl` CLI, for brokers with a TLS listener. One
 * CA signs a server certificate for 127.0.0.1 and localhost (subjectAltName: rustls, which Deno
 * uses, ignores the CN); a second, unrelated CA is the "wrong CA" a client must refuse. Keys are
 * EC P-256 (fast to make); everything lives in one temp dir, removed on dispose.
 *
 * A TLS broker is `startMosquitto({ listenerConfig: pki.mosquittoListenerConfig })`; its clients
 * pass `--cafile pki.caFile` (trusted) or `pki.otherCaFile` (must fail).
 *
 * @module
 */

import { commandProblem, skipUnless } from "./environment.ts";

/** Where the Debian `openssl` CLI lives. */
export const OPENSSL = "openssl";

/** Files of a throwaway PKI; disposing removes them. */
export interface TlsFixture extends AsyncDisposable {
  /** Temp dir holding all the files. */
  dir: string;
  /** PEM certificate of the CA that signed the server certificate. */
  caFile: string;
  /** PEM certificate of another CA, which signed nothing the server presents. */
  otherCaFile: string;
  /** Server certificate (SAN IP:127.0.0.1, DNS:localhost), signed by {@linkcode caFile}. */
  certFile: string;
  /** Server private key (unencrypted PEM). */
  keyFile: string;
  /** mosquitto.conf lines that turn a listener into a TLS listener with these files. */
  mosquittoListenerConfig: string;
}

/**
 * Why tests that need `openssl` must be skipped, or `undefined` when they can run (always
 * `undefined` under `CI=true`: a missing openssl must fail there, not skip).
 */
export function opensslSkipReason(): string | undefined {
  return skipUnless(
    "openssl",
    () => commandProblem(OPENSSL, ["version"], "apt-get install openssl"),
  );
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(OPENSSL, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`openssl ${args[0]} failed (exit ${out.code}): ${err}`);
  }
}

/** A self-signed CA: key `<name>.key`, certificate `<name>.pem`. */
async function makeCa(dir: string, name: string, cn: string): Promise<void> {
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${cn}`,
    // rustls checks these on a trust anchor's issued chain; spelled out, not left to openssl.cnf.
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
  ], dir);
}

/**
 * Makes the CA, the wrong CA and a server certificate for 127.0.0.1/localhost in a new temp
 * dir (about 50 ms of openssl runs). The files are readable by the user running the tests,
 * which is also who our mosquitto runs as (see support/mosquitto.ts).
 */
export async function makeTlsFixture(): Promise<TlsFixture> {
  const dir = await Deno.makeTempDir({ prefix: "tls-test-" });
  try {
    await makeCa(dir, "ca", "secure_mqtt_client test CA");
    await makeCa(dir, "other-ca", "unrelated test CA");
    await openssl([
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-subj",
      "/CN=localhost",
      "-keyout",
      "server.key",
      "-out",
      "server.csr",
    ], dir);
    await Deno.writeTextFile(
      `${dir}/server.ext`,
      [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        "extendedKeyUsage=serverAuth",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "",
      ].join("\n"),
    );
    await openssl([
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      "server.ext",
      "-out",
      "server.pem",
    ], dir);
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  const fixture: TlsFixture = {
    dir,
    caFile: `${dir}/ca.pem`,
    otherCaFile: `${dir}/other-ca.pem`,
    certFile: `${dir}/server.pem`,
    keyFile: `${dir}/server.key`,
    mosquittoListenerConfig: [
      `cafile ${dir}/ca.pem`,
      `certfile ${dir}/server.pem`,
      `keyfile ${dir}/server.key`,
    ].join("\n"),
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return fixture;
}
