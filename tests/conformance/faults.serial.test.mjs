// faults.serial.test.mjs - the official SDK against the emulator's injected
// failures (POST /_emulator/config): the SDK must see them exactly as it sees
// E2B's (429 + Retry-After retries, RateLimitError, ServiceBusyError,
// NotEnoughSpaceError, cut streams, vanished sandboxes, lost responses).
//
// The knobs are global to the emulator, so run_conformance.sh runs the
// *.serial.test.mjs files on their own, after the other files.
import assert from 'node:assert/strict';
import { after, afterEach, test } from 'node:test';

import {
  NotEnoughSpaceError,
  RateLimitError,
  Sandbox,
  SandboxError,
  ServiceBusyError,
  TimeoutError,
  assertError,
  cleanup,
  configureEmulator,
  createSandbox,
  defaultKnobs,
  describe,
  emulatorStats,
  forget,
  listAll,
  liveIds,
  rejection,
  runTag,
  waitFor,
  withDiagnostics,
} from './support.mjs';

afterEach(() => configureEmulator(defaultKnobs));
after(async () => {
  await configureEmulator(defaultKnobs);
  await cleanup();
});

const meta = (kind) => ({ metadata: { run: runTag, kind } });

test('a 429 with Retry-After on create is retried by the SDK', withDiagnostics(async () => {
  await configureEmulator({ faults: [{ endpoint: 'create', kind: 'status', status: 429, retry_after: 1, count: 1 }] });
  const before = await emulatorStats();
  const t0 = Date.now();
  const sbx = await createSandbox('base', { timeoutMs: 60_000, ...meta('retry') });
  const took = Date.now() - t0;
  const stats = await emulatorStats();
  assert.equal(stats.faults_injected - before.faults_injected, 1, 'one fault fired');
  assert.equal(stats.requests.by_endpoint.create - (before.requests.by_endpoint.create ?? 0), 2,
    'the SDK sent the create twice');
  assert.ok(took >= 900, `the SDK retried after ${took} ms; Retry-After said 1 s`);
  assert.equal((await sbx.commands.run('echo ok')).stdout, 'ok\n');
}));

test('create_rate_per_second: the second create waits for Retry-After, both succeed', withDiagnostics(async () => {
  await configureEmulator({ create_rate_per_second: 1 });
  const before = await emulatorStats();
  const [a, b] = await Promise.all([
    createSandbox('base', { timeoutMs: 60_000, ...meta('rate-a') }),
    createSandbox('base', { timeoutMs: 60_000, ...meta('rate-b') }),
  ]);
  assert.notEqual(a.sandboxId, b.sandboxId);
  const stats = await emulatorStats();
  assert.ok(stats.requests.by_endpoint.create - (before.requests.by_endpoint.create ?? 0) >= 3,
    'one of the creates should have been refused with 429 and retried');
}));

test('max_concurrent_sandboxes: a create over the limit is a RateLimitError', withDiagnostics(async () => {
  const live = (await emulatorStats()).live;
  await configureEmulator({ max_concurrent_sandboxes: live + 1 });
  await createSandbox('base', { timeoutMs: 60_000, ...meta('limit-1') });
  const err = await rejection('create over the concurrency limit', () =>
    createSandbox('base', { timeoutMs: 60_000, ...meta('limit-2') }));
  assertError(err, RateLimitError, /maximum number of concurrent E2B sandboxes/, 'create over the limit');
}));

test('503 on create is a ServiceBusyError; 507 on upload is a NotEnoughSpaceError', withDiagnostics(async () => {
  await configureEmulator({ faults: [{ endpoint: 'create', kind: 'status', status: 503, count: 1 }] });
  const busy = await rejection('create answered 503', () => createSandbox('base', { timeoutMs: 60_000, ...meta('busy') }));
  assertError(busy, ServiceBusyError, null, 'create answered 503');

  const sbx = await createSandbox('base', { timeoutMs: 60_000, ...meta('space') });
  await configureEmulator({ faults: [{ endpoint: 'files.upload', kind: 'status', status: 507, count: 1 }] });
  const full = await rejection('upload answered 507', () => sbx.files.write('x.txt', 'x'));
  assertError(full, NotEnoughSpaceError, null, 'upload answered 507');
  await sbx.files.write('x.txt', 'x');  // the budget is spent
}));

test('a command stream cut mid-way fails the command (no hang)', withDiagnostics(async () => {
  const sbx = await createSandbox('base', { timeoutMs: 60_000, ...meta('cut') });
  await configureEmulator({ faults: [{ endpoint: 'process.start', kind: 'cut_stream', after_events: 2, count: 1 }] });
  const t0 = Date.now();
  const err = await rejection('a cut command stream', () =>
    sbx.commands.run('echo one; sleep 0.3; echo two; sleep 0.3; echo three', { timeoutMs: 20_000 }));
  assert.ok(err instanceof SandboxError || err instanceof Error, describe(err));
  assert.ok(Date.now() - t0 < 15_000, 'the cut stream was noticed late');
  // The sandbox itself is fine.
  assert.equal((await sbx.commands.run('echo fine')).stdout, 'fine\n');
}));

test('a vanished sandbox looks like an early E2B "sandbox was not found"', withDiagnostics(async () => {
  const before = await emulatorStats();
  await configureEmulator({ faults: [{ endpoint: 'create', kind: 'vanish', after_ms: 500, count: 1 }] });
  const sbx = await createSandbox('base', { timeoutMs: 120_000, ...meta('vanish') });
  await waitFor('the sandbox to vanish', async () => (await sbx.isRunning()) === false, { timeoutMs: 10_000 });
  forget(sbx.sandboxId);
  const err = await rejection('read from a vanished sandbox', () => sbx.files.read('anything'));
  assertError(err, TimeoutError, /sandbox was not found/i, 'read from a vanished sandbox');
  const stats = await emulatorStats();
  assert.equal(stats.vanished - before.vanished, 1);
}));

test('a lost create response: the SDK fails, the sandbox exists and can be killed', withDiagnostics(async () => {
  const before = new Set(liveIds(await emulatorStats()));
  await configureEmulator({ faults: [{ endpoint: 'create', kind: 'lose_response', count: 1 }] });
  const err = await rejection('create with a lost response', () =>
    Sandbox.create('base', { timeoutMs: 60_000, ...meta('lost') }));
  assert.ok(err instanceof Error, describe(err));
  const leaked = liveIds(await emulatorStats()).filter((id) => !before.has(id));
  assert.equal(leaked.length, 1, `expected exactly one leaked sandbox, got ${JSON.stringify(leaked)}`);
  // A sweep by metadata (what a client does after losing a create) finds it.
  const found = await listAll({ query: { metadata: { run: runTag, kind: 'lost' } } });
  assert.deepEqual(found.map((s) => s.sandboxId), leaked);
  assert.equal(await Sandbox.kill(leaked[0]), true);
}));

test('latency_ms delays every answer', withDiagnostics(async () => {
  const sbx = await createSandbox('base', { timeoutMs: 60_000, ...meta('latency') });
  await configureEmulator({ latency_ms: 400 });
  const t0 = Date.now();
  await sbx.getInfo();
  const took = Date.now() - t0;
  assert.ok(took >= 380, `getInfo took ${took} ms with latency_ms 400`);
}));
