/**
 * A seeded source of integers for tests, so that a randomized test fails the same way twice.
 *
 * @module
 */

/** mulberry32: small, fast, and good enough to pick test inputs; integers in `[0, n)`. */
export function seeded(seed: number): (n: number) => number {
  return (n) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000) * n);
  };
}
