/**
 * DH micro-benchmark, medians in ms. By default, in one warm process: our keygen + shared
 * secret (shipped and full-size exponents) one-shot and with a DhPrecomputation (what a
 * responder uses), the reduction strategies modPow chooses between, and pyca/cryptography
 * (OpenSSL) in the same run. `cold` instead times the first keygen + shared secret of fresh
 * processes, which is what the one-shot CLI pays, and the first ones with a new precomputation
 * (a responder's first exchange, tables included).
 *
 *     deno run -A bench/dh_micro.ts [runs=15]
 *     deno run -A bench/dh_micro.ts cold [runs=9]
 *
 * @module
 */

import {
  computeSharedSecret,
  DhPrecomputation,
  generateKeyPair,
  parseDhParamsPem,
  PRIVATE_KEY_BITS,
} from "../lib/crypto/dh.ts";
import { modPow } from "../lib/crypto/modpow.ts";

const cold = Deno.args[0] === "cold";
const runs = Number(Deno.args[cold ? 1 : 0] ?? (cold ? 9 : 15));
const pemText = await Deno.readTextFile(new URL("../dhparam4096.pem", import.meta.url));
const group = parseDhParamsPem(pemText);
const { p } = group;

/**
 * Times every case once per round, round-robin, and returns the medians: the machine's load
 * then shifts all cases alike instead of whichever happened to run during a busy second.
 */
function medians(cases: Record<string, () => unknown>): Record<string, number> {
  const times: Record<string, number[]> = {};
  for (const [name, f] of Object.entries(cases)) {
    f(); // warm-up
    times[name] = [];
  }
  for (let i = 0; i < runs; i++) {
    for (const [name, f] of Object.entries(cases)) {
      const t = performance.now();
      f();
      times[name].push(performance.now() - t);
    }
  }
  const mid = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
  return Object.fromEntries(Object.entries(times).map(([name, xs]) => [name, mid(xs)]));
}

const row = (name: string, ms: number) => console.log(`${name.padEnd(50)} ${ms.toFixed(2)} ms`);

if (cold && Deno.args[1] === "child") {
  const bits = Number(Deno.args[2]);
  const options = Deno.args[3] === "precomputed"
    ? { precomputation: new DhPrecomputation(group) }
    : {};
  const t0 = performance.now();
  const { privateKey } = generateKeyPair(group, bits, options);
  const t1 = performance.now();
  computeSharedSecret(group, privateKey, 3n ** 3000n % p, options);
  console.log(t1 - t0, performance.now() - t1);
  Deno.exit(0);
}
if (cold) {
  for (const how of ["one-shot", "precomputed"]) {
    for (const bits of [PRIVATE_KEY_BITS, 4096]) {
      const kg: number[] = [], ex: number[] = [];
      for (let i = 0; i < runs; i++) {
        const args = ["run", "-A", import.meta.filename!, "cold", "child", String(bits), how];
        const { stdout } = await new Deno.Command(Deno.execPath(), { args }).output();
        const [k, e] = new TextDecoder().decode(stdout).trim().split(" ").map(Number);
        kg.push(k);
        ex.push(e);
      }
      const mid = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
      row(`ours ${bits}-bit, cold, ${how}: first keygen`, mid(kg));
      row(`ours ${bits}-bit, cold, ${how}: first shared secret`, mid(ex));
    }
  }
  Deno.exit(0);
}

// The alternatives modPow and DhPrecomputation were measured against: the same sliding window
// over plain `%`, over Barrett reduction (HAC 14.42) and over Montgomery reduction (HAC 14.36).
function slidingWindow(b: bigint, e: bigint, mul: (a: bigint, b: bigint) => bigint): bigint {
  const bits = e.toString(2);
  const w = bits.length > 671 ? 6 : 5;
  const b2 = mul(b, b);
  const odd = [b];
  for (let i = 1; i < 1 << (w - 1); i++) odd.push(mul(odd[i - 1], b2));
  let r: bigint | undefined;
  for (let i = 0; i < bits.length;) {
    if (bits[i] === "0") {
      if (r !== undefined) r = mul(r, r);
      i++;
      continue;
    }
    let j = Math.min(i + w, bits.length);
    while (bits[j - 1] === "0") j--;
    if (r !== undefined) { for (let s = i; s < j; s++) r = mul(r, r); }
    const o = odd[parseInt(bits.slice(i, j), 2) >> 1];
    r = r === undefined ? o : mul(r, o);
    i = j;
  }
  return r!;
}
const K = 4096n;
const mu = (1n << (2n * K)) / p;
const barrett = (x: bigint) => {
  let r = x - (((x >> (K - 1n)) * mu) >> (K + 1n)) * p;
  while (r >= p) r -= p;
  return r;
};

const MONT_K = 4096;
let inverse = p;
for (let bits = 3; bits < MONT_K; bits *= 2) {
  inverse = BigInt.asUintN(MONT_K, inverse * (2n - p * inverse));
}
const negInverse = BigInt.asUintN(MONT_K, -inverse);
const redc = (t: bigint) => {
  const u = (t + BigInt.asUintN(MONT_K, BigInt.asUintN(MONT_K, t) * negInverse) * p) >> K;
  return u >= p ? u - p : u;
};
const montgomery = (y: bigint, x: bigint) =>
  redc(slidingWindow((y << K) % p, x, (a, b) => redc(a * b)));

const precomputation = new DhPrecomputation(group);
const shipped = generateKeyPair(group);
const full = generateKeyPair(group, 4096);
const peer = generateKeyPair(group).publicKey;
const ref = modPow(peer, full.privateKey, p);
if (slidingWindow(peer, full.privateKey, (a, b) => (a * b) % p) !== ref) throw new Error("%");
if (slidingWindow(peer, full.privateKey, (a, b) => barrett(a * b)) !== ref) throw new Error("B");
if (montgomery(peer, full.privateKey) !== ref) throw new Error("M");
if (montgomery(2n, full.privateKey) !== full.publicKey) throw new Error("M2");

console.log(`runs=${runs}, PRIVATE_KEY_BITS=${PRIVATE_KEY_BITS}`);
const squares = Array.from({ length: 200 }, () => {
  const x = modPow(peer, BigInt(Math.floor(Math.random() * 2 ** 40)), p);
  return x * x;
});
const plain = (a: bigint, b: bigint) => (a * b) % p;
const viaBarrett = (a: bigint, b: bigint) => barrett(a * b);
const cases: Record<string, () => unknown> = {
  "200 x BigInt % of a 8192-bit product": () => squares.map((s) => s % p),
  "200 x Barrett of a 8192-bit product": () => squares.map(barrett),
  "200 x Montgomery REDC of a 8192-bit product": () => squares.map(redc),
};
for (
  const [bits, x] of [[PRIVATE_KEY_BITS, shipped.privateKey], [4096, full.privateKey]] as const
) {
  Object.assign(cases, {
    [`ours ${bits}-bit: keygen (2^x)`]: () => generateKeyPair(group, bits),
    [`ours ${bits}-bit: shared secret (y^x)`]: () => computeSharedSecret(group, x, peer),
    [`ours ${bits}-bit, precomputed: keygen (2^x)`]: () =>
      generateKeyPair(group, bits, { precomputation }),
    [`ours ${bits}-bit, precomputed: shared secret (y^x)`]: () =>
      computeSharedSecret(group, x, peer, { precomputation }),
    [`  alt ${bits}-bit: 2^x, sliding window, plain %`]: () => slidingWindow(2n, x, plain),
    [`  alt ${bits}-bit: 2^x, sliding window, Montgomery`]: () => montgomery(2n, x),
    [`  alt ${bits}-bit: y^x, plain %`]: () => slidingWindow(peer, x, plain),
    [`  alt ${bits}-bit: y^x, Barrett`]: () => slidingWindow(peer, x, viaBarrett),
    [`  alt ${bits}-bit: y^x, Montgomery`]: () => montgomery(peer, x),
  });
}
const result = medians(cases);
for (const [name, ms] of Object.entries(result)) {
  row(name, ms);
  const total = name.match(/^(ours \d+-bit.*): shared/);
  if (total) row(`${total[1]}: keygen + shared secret`, result[`${total[1]}: keygen (2^x)`] + ms);
}

const py = `
import statistics, sys, time
from cryptography.hazmat.primitives.serialization import load_pem_parameters
params = load_pem_parameters(sys.stdin.buffer.read())
peer = params.generate_private_key().public_key()
kg, ex = [], []
for _ in range(${runs}):
    t0 = time.perf_counter(); k = params.generate_private_key(); k.public_key()
    t1 = time.perf_counter(); k.exchange(peer); t2 = time.perf_counter()
    kg.append((t1 - t0) * 1e3); ex.append((t2 - t1) * 1e3)
print(statistics.median(kg), statistics.median(ex), k.private_numbers().x.bit_length())
`;
try {
  const child = new Deno.Command("/usr/bin/python3", {
    args: ["-c", py],
    stdin: "piped",
    stdout: "piped",
  })
    .spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(pemText));
  await w.close();
  const [kg, ex, bits] = new TextDecoder().decode((await child.output()).stdout).trim().split(" ")
    .map(Number);
  row(`pyca (OpenSSL) keygen, ${bits}-bit x`, kg);
  row("pyca (OpenSSL) exchange", ex);
  row("pyca (OpenSSL) keygen + exchange", kg + ex);
} catch (e) {
  console.log(`pyca: not measured because ${(e as Error).message}`);
}
