/**
 * docs/architecture.md's rules, checked on the code: the import graph of lib/ (nothing imports
 * upward, nor cli/, demo/, support/ or tests/; lib/client/, lib/responder/ and lib/check/ keep
 * out of each other), no process access in lib/, and a line in the map for every module.
 */

import assert from "node:assert/strict";
import { ROOT } from "../../support/processes.ts";

/** Every .ts file below `dir`, as paths relative to the project root. */
async function modules(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(`${ROOT}/${dir}`)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) found.push(...await modules(path));
    else if (entry.name.endsWith(".ts")) found.push(path);
  }
  return found.sort();
}

/** The project-relative paths that `path` imports, code only (doc examples left out). */
async function importsOf(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(`${ROOT}/${path}`);
  const code = text.replace(/\/\*\*[\s\S]*?\*\//g, "");
  const dir = path.slice(0, path.lastIndexOf("/"));
  return [...code.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)].map(([, spec]) => {
    const parts = `${dir}/${spec}`.split("/");
    const out: string[] = [];
    for (const part of parts) {
      if (part === "..") out.pop();
      else if (part !== ".") out.push(part);
    }
    return out.join("/");
  });
}

/** The layer of a lib/ module: its folder, or the file itself at lib/'s top. */
const layer = (path: string) => path.split("/").slice(0, 2).join("/");

Deno.test("lib/ imports nothing outside lib/ but the DH parameters", async () => {
  for (const path of await modules("lib")) {
    for (const target of await importsOf(path)) {
      assert.ok(
        target.startsWith("lib/") || target === "dhparam4096.pem",
        `${path} imports ${target}`,
      );
    }
  }
});

Deno.test("nothing imports upward: crypto, then protocol, then auth, then the rest", async () => {
  const rank: Record<string, number> = {
    "lib/crypto": 0,
    "lib/utf8.ts": 0,
    "lib/protocol": 1,
    "lib/auth": 2,
    "lib/log.ts": 2,
    "lib/mqtt_size_guard.ts": 2,
    "lib/mqtt.ts": 3,
    "lib/embedded_broker.ts": 3,
    "lib/client": 4,
    "lib/responder": 4,
    "lib/check": 4,
  };
  for (const path of await modules("lib")) {
    const from = layer(path);
    assert.ok(from in rank, `${from} has a place in the layers`);
    for (const target of await importsOf(path)) {
      if (!target.startsWith("lib/")) continue;
      const to = layer(target);
      if (to === from) continue;
      assert.ok(rank[to] < rank[from], `${path} (${from}) imports ${target} (${to})`);
    }
  }
});

Deno.test("the library touches no process: no exit, argv, environment or standard streams", async () => {
  for (const path of await modules("lib")) {
    const code = (await Deno.readTextFile(`${ROOT}/${path}`)).replace(/\/\*\*[\s\S]*?\*\//g, "");
    for (
      const forbidden of [
        /Deno\.exit\b/,
        /Deno\.args\b/,
        /Deno\.env\b/,
        /Deno\.std(in|out|err)\b/,
        /console\./,
      ]
    ) {
      assert.doesNotMatch(code, forbidden, path);
    }
  }
});

Deno.test("docs/architecture.md names every module of cli/ and lib/", async () => {
  const doc = await Deno.readTextFile(`${ROOT}/docs/architecture.md`);
  const map = /## The map\n\n```\n([\s\S]*?)\n```/.exec(doc)?.[1];
  assert.ok(map, "the map");
  for (const path of [...await modules("cli"), ...await modules("lib")]) {
    const name = path.slice(path.lastIndexOf("/") + 1);
    assert.ok(map.includes(name), `the map names ${path}`);
  }
});
