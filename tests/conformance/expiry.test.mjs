// expiry.test.mjs - sandbox lifetimes: a sandbox dies at its timeout (taking its
// processes with it), setTimeout keeps one alive, and every call on an expired
// sandbox fails the way it does on E2B.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import {
  Sandbox,
  SandboxError,
  SandboxNotFoundError,
  TimeoutError,
  assertError,
  cleanup,
  createSandbox,
  describe,
  emulatorStats,
  forget,
  liveIds,
  rejection,
  runTag,
  waitFor,
  withDiagnostics,
} from './support.mjs';

after(cleanup);

test('a sandbox expires at its timeout; setTimeout keeps another alive', withDiagnostics(async () => {
  const statsBefore = await emulatorStats();
  const [short, kept] = await Promise.all([
    createSandbox('base', { timeoutMs: 2000, metadata: { run: runTag, kind: 'expiry' } }),
    createSandbox('base', { timeoutMs: 2000, metadata: { run: runTag, kind: 'kept' } }),
  ]);
  await kept.setTimeout(60_000);
  const createdAt = Date.now();

  assert.equal((await short.commands.run('echo alive')).stdout, 'alive\n');
  await short.files.write('before-expiry.txt', 'x');

  // A command still running when the sandbox dies must end (not hang) with an error.
  // (The abort only frees this test process if the emulator never ends the stream.)
  const abort = new AbortController();
  const inFlight = short.commands.run('sleep 30', { timeoutMs: 0, signal: abort.signal }).then(
    (r) => ({ ok: r }), (e) => ({ err: e, at: Date.now() }));

  await waitFor('isRunning() to turn false after the 2 s timeout',
    async () => (await short.isRunning()) === false, { timeoutMs: 15_000, intervalMs: 250 });
  const goneAfter = Date.now() - createdAt;
  assert.ok(goneAfter >= 1000, `the sandbox died after only ${goneAfter} ms (timeout 2000 ms)`);
  forget(short.sandboxId);

  const outcome = await Promise.race([
    inFlight,
    new Promise((resolve) => setTimeout(() => resolve({ hung: true }), 15_000)),
  ]);
  abort.abort();
  assert.ok(!outcome.hung, 'a command running when its sandbox expired never finished');
  assert.ok(outcome.err, `a command running when its sandbox expired returned ${describe(outcome.ok)}`);
  assert.ok(outcome.err instanceof TimeoutError || outcome.err instanceof SandboxError,
    `in-flight command at expiry: expected TimeoutError/SandboxError, got ${describe(outcome.err)}`);

  const readErr = await rejection('files.read after expiry', () => short.files.read('before-expiry.txt'));
  assertError(readErr, TimeoutError, /sandbox was not found/i, 'files.read after expiry');
  const runErr = await rejection('commands.run after expiry', () => short.commands.run('echo hi'));
  assertError(runErr, SandboxNotFoundError, null, 'commands.run after expiry');
  const infoErr = await rejection('getInfo after expiry', () => Sandbox.getInfo(short.sandboxId));
  assertError(infoErr, SandboxNotFoundError, null, 'getInfo after expiry');
  assert.equal(await Sandbox.kill(short.sandboxId), false, 'kill after expiry -> false');

  // The extended one is still there, well past the original 2 s.
  assert.equal(await kept.isRunning(), true, 'setTimeout(60 s) did not keep the sandbox alive');
  assert.equal((await kept.commands.run('echo still-here')).stdout, 'still-here\n');

  const stats = await emulatorStats();
  assert.ok(stats.expired >= 1 && stats.expired > (statsBefore.expired ?? 0),
    `stats.expired ${statsBefore.expired} -> ${stats.expired}`);
  assert.ok(!liveIds(stats).includes(short.sandboxId), `stats still list ${short.sandboxId} as live`);
  assert.ok(liveIds(stats).includes(kept.sandboxId), `stats do not list ${kept.sandboxId} as live`);

  assert.equal(await kept.kill(), true);
  forget(kept.sandboxId);
}));
