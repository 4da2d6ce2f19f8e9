// support.mjs - shared helpers for the E2B SDK conformance tests.
//
// The tests talk to genesis_e2b_emulator exactly as a user's program would: the
// official SDK (npm `e2b`, pinned in package.json) configured only through the
// environment (E2B_API_URL, E2B_SANDBOX_URL, E2B_API_KEY, NODE_EXTRA_CA_CERTS for
// HTTPS). run_conformance.sh starts the emulator and sets these.
//
// Environment:
//   E2B_API_URL, E2B_SANDBOX_URL, E2B_API_KEY   the emulator's JSON line
//   E2B_CONFORMANCE_NODE_MODULES                folder holding node_modules/e2b
//                                               (default: next to this file)
//   E2B_CONFORMANCE_RUN_TAG                     unique tag for this run's metadata

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

// Loads the SDK the way `import 'e2b'` would in Node: the package has no
// "exports" map, so Node resolves its "main" (the CommonJS build) either way.
function loadSdk() {
  const base = process.env.E2B_CONFORMANCE_NODE_MODULES || here;
  const req = createRequire(path.join(base, 'package.json'));
  const sdk = req('e2b');
  const version = req('e2b/package.json').version;
  return { sdk, version };
}

const loaded = loadSdk();
export const e2b = loaded.sdk;
export const sdkVersion = loaded.version;
export const {
  Sandbox,
  RateLimitError,
  ServiceBusyError,
  NotEnoughSpaceError,
  CommandExitError,
  TimeoutError,
  SandboxError,
  SandboxNotFoundError,
  NotFoundError,
  FileNotFoundError,
  InvalidArgumentError,
  AuthenticationError,
  FileType,
} = e2b;

for (const name of ['E2B_API_URL', 'E2B_SANDBOX_URL', 'E2B_API_KEY']) {
  if (!process.env[name]) {
    throw new Error(`${name} is not set: run these tests through run_conformance.sh`);
  }
}
export const apiUrl = process.env.E2B_API_URL.replace(/\/+$/, '');
export const apiKey = process.env.E2B_API_KEY;

// A tag unique to this run (and this test file), so list queries only see our sandboxes.
export const runTag =
  (process.env.E2B_CONFORMANCE_RUN_TAG || 'conf') + '-' + randomBytes(4).toString('hex');

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls `probe` every `intervalMs` until it returns a truthy value; throws after `timeoutMs`.
export async function waitFor(what, probe, { timeoutMs = 10_000, intervalMs = 200 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? `${last.name}: ${last.message}` : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(intervalMs);
  }
}

// Runs `fn` and returns what it threw; fails when it did not throw.
export async function rejection(what, fn) {
  try {
    const value = await fn();
    assert.fail(`${what}: expected an error, got ${describe(value)}`);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    return err;
  }
}

export function describe(value) {
  if (value instanceof Error) return `${value.constructor?.name ?? value.name}(${JSON.stringify(value.message)})`;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

// Asserts `err` is an instance of `cls` (by class, falling back to the name for
// cross-realm safety) and that its message matches `pattern` when given.
export function assertError(err, cls, pattern, what = 'error') {
  const ok = err instanceof cls || err?.name === cls.name;
  assert.ok(ok, `${what}: expected ${cls.name}, got ${describe(err)}\n${err?.stack ?? ''}`);
  if (pattern) {
    assert.match(String(err.message), pattern, `${what}: unexpected ${cls.name} message`);
  }
}

// ---- emulator introspection (not part of the E2B protocol) -------------------

export async function emulatorStats() {
  const res = await fetch(`${apiUrl}/_emulator/stats`, { headers: { 'X-API-Key': apiKey } });
  if (!res.ok) throw new Error(`GET /_emulator/stats -> ${res.status} ${await res.text()}`);
  return res.json();
}

// POST /_emulator/config: changes the emulator's knobs (latency, faults, limits).
export async function configureEmulator(knobs) {
  const res = await fetch(`${apiUrl}/_emulator/config`, {
    method: 'POST',
    headers: { 'X-API-Key': apiKey, 'Content-Type': 'application/json' },
    body: JSON.stringify(knobs),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST /_emulator/config ${JSON.stringify(knobs)} -> ${res.status} ${text}`);
  return JSON.parse(text);
}

export const defaultKnobs = {
  latency_ms: 0, endpoint_latency_ms: {}, faults: [], max_concurrent_sandboxes: 0, create_rate_per_second: 0,
};

// IDs of the live sandboxes in the stats (entries may be IDs or objects).
export function liveIds(stats) {
  return (stats.live_sandboxes ?? []).map((s) =>
    typeof s === 'string' ? s : s.sandboxID ?? s.sandbox_id ?? s.id ?? JSON.stringify(s));
}

// ---- sandbox bookkeeping -----------------------------------------------------

const created = new Set();

// Sandbox.create, remembering the sandbox so cleanup() can kill it.
export async function createSandbox(template, opts) {
  const sbx = template === undefined ? await Sandbox.create(opts) : await Sandbox.create(template, opts);
  created.add(sbx.sandboxId);
  return sbx;
}

export function forget(id) {
  created.delete(id);
}

// Kills every sandbox this file created (ignores the ones already gone).
export async function cleanup() {
  const ids = [...created];
  created.clear();
  await Promise.all(ids.map((id) => Sandbox.kill(id).catch(() => false)));
}

// Wraps a test body: on failure, prints the emulator's stats so the log shows its
// view of the world next to the assertion.
export function withDiagnostics(fn) {
  return async (t) => {
    try {
      return await fn(t);
    } catch (err) {
      let stats;
      try {
        stats = JSON.stringify(await emulatorStats());
      } catch (statsErr) {
        stats = `(unavailable: ${statsErr.message})`;
      }
      const name = t?.name ?? '?';
      process.stderr.write(
        `\n--- diagnostics for "${name}" ---\nerror: ${describe(err)}\n` +
          (err?.stack ? `${err.stack}\n` : '') +
          `emulator stats: ${stats}\n---\n`,
      );
      throw err;
    }
  };
}

// Collects every page of Sandbox.list(opts) (bounded).
export async function listAll(opts) {
  const paginator = Sandbox.list(opts);
  const items = [];
  for (let page = 0; paginator.hasNext; page++) {
    assert.ok(page < 50, 'Sandbox.list: more than 50 pages, the paginator does not end');
    items.push(...(await paginator.nextItems()));
  }
  return items;
}

export const semver = /^\d+\.\d+\.\d+(?:[-+].*)?$/;
