// lifecycle.test.mjs - control plane through the official SDK: create (envs,
// metadata), getInfo, setTimeout, list with a metadata filter, connect, kill, and
// what envd answers for a killed sandbox.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import {
  AuthenticationError,
  Sandbox,
  SandboxNotFoundError,
  TimeoutError,
  assertError,
  cleanup,
  createSandbox,
  emulatorStats,
  forget,
  listAll,
  liveIds,
  rejection,
  runTag,
  sdkVersion,
  semver,
  withDiagnostics,
} from './support.mjs';

after(cleanup);

// Metadata values that need every layer of the list filter's triple encoding.
const oddValue = 'a b&c=d/ü%+?#';

test('the SDK under test is the pinned version', () => {
  assert.equal(sdkVersion, '2.51.0');
});

test('Sandbox.create with envs and metadata; getInfo reports them', withDiagnostics(async () => {
  const before = Date.now();
  const metadata = { run: runTag, kind: 'lifecycle', 'odd key': oddValue };
  const sbx = await createSandbox('base', {
    timeoutMs: 120_000,
    envs: { CREATE_LEVEL: 'from-create' },
    metadata,
  });
  assert.match(sbx.sandboxId, /^[a-z0-9]+$/, 'sandbox IDs must be lowercase alphanumerics (the edge proxy rejects others)');

  const info = await sbx.getInfo();
  assert.equal(info.sandboxId, sbx.sandboxId);
  assert.ok(info.templateId === 'base' || info.name === 'base',
    `templateId/name should name the template: ${JSON.stringify({ templateId: info.templateId, name: info.name })}`);
  assert.deepEqual(info.metadata, metadata);
  assert.equal(info.state, 'running');
  assert.match(info.envdVersion, semver);
  assert.ok(info.startedAt instanceof Date && !Number.isNaN(info.startedAt.getTime()), `startedAt: ${info.startedAt}`);
  assert.ok(info.endAt instanceof Date && !Number.isNaN(info.endAt.getTime()), `endAt: ${info.endAt}`);
  assert.ok(Math.abs(info.startedAt.getTime() - before) < 30_000,
    `startedAt ${info.startedAt.toISOString()} is not near now (${new Date(before).toISOString()})`);
  const ttl = info.endAt.getTime() - info.startedAt.getTime();
  assert.ok(ttl > 115_000 && ttl < 125_000, `endAt - startedAt should be ~120 s, is ${ttl} ms`);
  assert.ok(info.cpuCount > 0, `cpuCount ${info.cpuCount}`);
  assert.ok(info.memoryMB > 0, `memoryMB ${info.memoryMB}`);

  // The static form asks the same endpoint.
  const info2 = await Sandbox.getInfo(sbx.sandboxId);
  assert.deepEqual(info2.metadata, metadata);

  // Create-time envs reach processes.
  const r = await sbx.commands.run('echo "$CREATE_LEVEL"');
  assert.equal(r.stdout, 'from-create\n');
  assert.equal(await sbx.isRunning(), true);
}));

test('Sandbox.create defaults: template base, 300 s lifetime', withDiagnostics(async () => {
  const sbx = await createSandbox(undefined, { metadata: { run: runTag, kind: 'defaults' } });
  const info = await sbx.getInfo();
  assert.ok(info.templateId === 'base' || info.name === 'base', `template: ${info.templateId} / ${info.name}`);
  const ttl = info.endAt.getTime() - info.startedAt.getTime();
  assert.ok(ttl > 295_000 && ttl < 305_000, `default lifetime should be 300 s, is ${ttl} ms`);
  assert.deepEqual(info.metadata, { run: runTag, kind: 'defaults' });
}));

test('setTimeout moves endAt (later and earlier)', withDiagnostics(async () => {
  const sbx = await createSandbox('base', { timeoutMs: 60_000, metadata: { run: runTag, kind: 'timeout' } });
  const first = await sbx.getInfo();

  await sbx.setTimeout(600_000);
  const now1 = Date.now();
  const longer = await sbx.getInfo();
  assert.ok(longer.endAt.getTime() > first.endAt.getTime() + 500_000,
    `endAt should move ~9 min later: ${first.endAt.toISOString()} -> ${longer.endAt.toISOString()}`);
  assert.ok(Math.abs(longer.endAt.getTime() - (now1 + 600_000)) < 15_000,
    `endAt should be ~now + 600 s, is ${longer.endAt.toISOString()}`);

  await Sandbox.setTimeout(sbx.sandboxId, 90_000);
  const now2 = Date.now();
  const shorter = await sbx.getInfo();
  assert.ok(shorter.endAt.getTime() < longer.endAt.getTime(),
    `setTimeout may shorten: ${longer.endAt.toISOString()} -> ${shorter.endAt.toISOString()}`);
  assert.ok(Math.abs(shorter.endAt.getTime() - (now2 + 90_000)) < 15_000,
    `endAt should be ~now + 90 s, is ${shorter.endAt.toISOString()}`);
  assert.equal(shorter.startedAt.getTime(), first.startedAt.getTime(), 'startedAt must not change');
}));

test('Sandbox.list with a metadata filter finds exactly the matching sandboxes', withDiagnostics(async () => {
  const group = `g ${runTag} ${oddValue}`;
  const [a, b, c] = await Promise.all([
    createSandbox('base', { timeoutMs: 120_000, metadata: { run: runTag, group, which: 'a' } }),
    createSandbox('base', { timeoutMs: 120_000, metadata: { run: runTag, group, which: 'b' } }),
    createSandbox('base', { timeoutMs: 120_000, metadata: { run: runTag, group: 'other', which: 'c' } }),
  ]);

  const byGroup = await listAll({ query: { metadata: { run: runTag, group } } });
  assert.deepEqual(byGroup.map((s) => s.sandboxId).sort(), [a.sandboxId, b.sandboxId].sort(),
    `list(metadata {run, group: ${JSON.stringify(group)}}) returned ${JSON.stringify(byGroup.map((s) => [s.sandboxId, s.metadata]))}`);
  for (const s of byGroup) {
    assert.equal(s.metadata.group, group, 'listed metadata must round-trip');
    assert.equal(s.state, 'running');
    assert.ok(s.startedAt instanceof Date && s.endAt instanceof Date);
    assert.match(s.envdVersion, semver);
  }

  // One key alone, paging one sandbox at a time.
  const byRun = await listAll({ query: { metadata: { run: runTag, which: 'c' } }, limit: 1 });
  assert.deepEqual(byRun.map((s) => s.sandboxId), [c.sandboxId]);

  const paged = await listAll({ query: { metadata: { group } }, limit: 1 });
  assert.deepEqual(paged.map((s) => s.sandboxId).sort(), [a.sandboxId, b.sandboxId].sort(),
    'paging with limit=1 must return every match exactly once');

  const none = await listAll({ query: { metadata: { run: `${runTag}-nobody` } } });
  assert.deepEqual(none, []);

  // Killed sandboxes leave the list.
  assert.equal(await b.kill(), true);
  forget(b.sandboxId);
  const afterKill = await listAll({ query: { metadata: { run: runTag, group } } });
  assert.deepEqual(afterKill.map((s) => s.sandboxId), [a.sandboxId]);
}));

test('Sandbox.connect attaches to a running sandbox', withDiagnostics(async () => {
  const sbx = await createSandbox('base', { timeoutMs: 60_000, metadata: { run: runTag, kind: 'connect' } });
  await sbx.files.write('connect-marker.txt', 'written before connect');

  const again = await Sandbox.connect(sbx.sandboxId, { timeoutMs: 120_000 });
  assert.equal(again.sandboxId, sbx.sandboxId);
  assert.equal(await again.files.read('/home/user/connect-marker.txt'), 'written before connect');
  const r = await again.commands.run('cat connect-marker.txt');
  assert.equal(r.stdout, 'written before connect');

  // connect only ever extends the lifetime.
  const info = await again.getInfo();
  assert.ok(info.endAt.getTime() > Date.now() + 100_000, `connect(timeoutMs 120 s) should extend endAt, is ${info.endAt.toISOString()}`);
}));

test('kill: true, then false; envd calls on a killed sandbox fail as on E2B', withDiagnostics(async () => {
  const sbx = await createSandbox('base', { timeoutMs: 120_000, metadata: { run: runTag, kind: 'kill' } });
  await sbx.files.write('before-kill.txt', 'x');
  assert.equal(await sbx.kill(), true);
  forget(sbx.sandboxId);
  assert.equal(await Sandbox.kill(sbx.sandboxId), false, 'killing again answers 404 {"code":404} -> false');

  assert.equal(await sbx.isRunning(), false, 'GET /health for a killed sandbox should be 502');

  const readErr = await rejection('files.read after kill', () => sbx.files.read('before-kill.txt'));
  assertError(readErr, TimeoutError, /sandbox was not found/i, 'files.read after kill');

  const runErr = await rejection('commands.run after kill', () => sbx.commands.run('echo hi'));
  assertError(runErr, SandboxNotFoundError, /not running anymore/i, 'commands.run after kill');

  const existsErr = await rejection('files.exists after kill', () => sbx.files.exists('before-kill.txt'));
  assertError(existsErr, TimeoutError, /sandbox was not found/i, 'files.exists (unary RPC) after kill');

  const infoErr = await rejection('getInfo after kill', () => sbx.getInfo());
  assertError(infoErr, SandboxNotFoundError, null, 'getInfo after kill');

  const timeoutErr = await rejection('setTimeout after kill', () => sbx.setTimeout(60_000));
  assertError(timeoutErr, SandboxNotFoundError, null, 'setTimeout after kill');

  const stats = await emulatorStats();
  assert.ok(!liveIds(stats).includes(sbx.sandboxId), `stats still list ${sbx.sandboxId} as live`);
  assert.ok(stats.killed >= 1, `stats.killed = ${stats.killed}`);
}));

test('a wrong API key is rejected with AuthenticationError', withDiagnostics(async () => {
  const apiKey = 'e2b_' + '0'.repeat(40);
  const err = await rejection('create with a wrong key', () =>
    Sandbox.create('base', { apiKey, timeoutMs: 10_000, metadata: { run: runTag, kind: 'bad-key' } }));
  assertError(err, AuthenticationError, null, 'create with a wrong key');

  const listErr = await rejection('list with a wrong key', () => listAll({ apiKey }));
  assertError(listErr, AuthenticationError, null, 'list with a wrong key');
}));

test('an unknown template is a 4xx error, not a sandbox', withDiagnostics(async () => {
  const err = await rejection('create with an unknown template', () =>
    Sandbox.create('no-such-template-' + runTag, { timeoutMs: 10_000, metadata: { run: runTag, kind: 'bad-template' } }));
  assert.ok(err instanceof Error, String(err));
  assert.match(String(err.message), /40[04]/, `expected a 400/404 message, got ${err.name}: ${err.message}`);
  const left = await listAll({ query: { metadata: { run: runTag, kind: 'bad-template' } } });
  assert.deepEqual(left, []);
}));
