// commands.test.mjs - process.Process through the official SDK: commands.run with
// cwd, envs, streamed output, exit codes, timeouts, background processes, kill,
// stdin and re-attaching.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

import {
  CommandExitError,
  InvalidArgumentError,
  TimeoutError,
  assertError,
  cleanup,
  createSandbox,
  rejection,
  runTag,
  sleep,
  waitFor,
  withDiagnostics,
} from './support.mjs';

let sbx;

before(async () => {
  sbx = await createSandbox('base', {
    timeoutMs: 300_000,
    envs: { CREATE_VAR: 'from-create', OVERRIDE_ME: 'create-value' },
    metadata: { run: runTag, kind: 'commands' },
  });
});
after(cleanup);

// Host processes ("<pid> <cmdline>") whose command line contains `needle`. The
// emulator runs on this machine, so every sandbox process shows up in the host's
// /proc, whatever PID namespaces the sandboxes use.
function hostProcessesMatching(needle) {
  const found = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    let cmdline;
    try {
      cmdline = readFileSync(`/proc/${p}/cmdline`).toString('utf8').replaceAll('\0', ' ').trim();
    } catch {
      continue;
    }
    if (cmdline.includes(needle)) found.push(`${p} ${cmdline}`);
  }
  return found;
}

test('cwd: default /home/user, absolute and relative', withDiagnostics(async () => {
  assert.equal((await sbx.commands.run('pwd')).stdout, '/home/user\n');
  assert.equal((await sbx.commands.run('echo "$HOME"')).stdout, '/home/user\n');
  assert.equal((await sbx.commands.run('pwd', { cwd: '/tmp' })).stdout, '/tmp\n');

  await sbx.files.makeDir('/home/user/work dir/nested');
  assert.equal((await sbx.commands.run('pwd', { cwd: '/home/user/work dir/nested' })).stdout, '/home/user/work dir/nested\n');
  assert.equal((await sbx.commands.run('pwd', { cwd: 'work dir' })).stdout, '/home/user/work dir\n',
    'a relative cwd is joined to /home/user');

  const err = await rejection('run in a missing cwd', () => sbx.commands.run('pwd', { cwd: '/home/user/does-not-exist' }));
  assertError(err, InvalidArgumentError, /does not exist/, 'run in a missing cwd');
}));

test('envs: create-time envs reach every process, request envs override them', withDiagnostics(async () => {
  const show = 'echo "$CREATE_VAR|$OVERRIDE_ME|${REQ_VAR-unset}"';
  assert.equal((await sbx.commands.run(show)).stdout, 'from-create|create-value|unset\n');
  const r = await sbx.commands.run(show, { envs: { OVERRIDE_ME: 'request-value', REQ_VAR: 'req value with spaces' } });
  assert.equal(r.stdout, 'from-create|request-value|req value with spaces\n');
  // Request envs do not stick.
  assert.equal((await sbx.commands.run(show)).stdout, 'from-create|create-value|unset\n');
  // The login shell finds the tools on the PATH.
  assert.equal((await sbx.commands.run('command -v bash >/dev/null && echo ok')).stdout, 'ok\n');
}));

test('stdout and stderr stream to onStdout/onStderr while the command runs', withDiagnostics(async () => {
  const out = [];
  const err = [];
  const t0 = Date.now();
  let firstOutAt;
  const result = await sbx.commands.run(
    'echo first-out; echo first-err >&2; sleep 1.5; echo second-out; echo second-err >&2',
    {
      onStdout: (d) => { firstOutAt ??= Date.now(); out.push(d); },
      onStderr: (d) => err.push(d),
    });
  const doneAt = Date.now();
  assert.equal(result.exitCode, 0);
  assert.equal(result.stdout, 'first-out\nsecond-out\n');
  assert.equal(result.stderr, 'first-err\nsecond-err\n');
  assert.equal(out.join(''), result.stdout, 'onStdout received exactly stdout');
  assert.equal(err.join(''), result.stderr, 'onStderr received exactly stderr');
  assert.ok(firstOutAt !== undefined, 'onStdout never fired');
  assert.ok(doneAt - firstOutAt >= 1000,
    `the first stdout chunk arrived ${firstOutAt - t0} ms after start and only ${doneAt - firstOutAt} ms before the end: output is not streamed`);
}));

test('large and non-ASCII output arrives complete', withDiagnostics(async () => {
  const r = await sbx.commands.run(
    `python3 -c 'import sys; sys.stdout.write("x" * 300000 + "\\n"); sys.stderr.write("ü✓🚀" * 20000)'`);
  assert.equal(r.stdout.length, 300_001);
  assert.equal(r.stdout, 'x'.repeat(300_000) + '\n');
  assert.equal(r.stderr, 'ü✓🚀'.repeat(20_000));
}));

test('a non-zero exit throws CommandExitError with exitCode, stdout and stderr', withDiagnostics(async () => {
  const err = await rejection('exit 3', () => sbx.commands.run('echo to-out; echo to-err >&2; exit 3'));
  assertError(err, CommandExitError, /exit status 3/, 'exit 3');
  assert.equal(err.exitCode, 3);
  assert.equal(err.stdout, 'to-out\n');
  assert.equal(err.stderr, 'to-err\n');

  const missing = await rejection('unknown command', () => sbx.commands.run('definitely-not-a-command-xyz'));
  assertError(missing, CommandExitError, null, 'unknown command');
  assert.equal(missing.exitCode, 127);
  assert.match(missing.stderr, /not found/);

  // A zero exit is a result, not an error.
  const ok = await sbx.commands.run('true');
  assert.equal(ok.exitCode, 0);
  assert.equal(ok.stdout, '');
}));

test('a command timeout raises TimeoutError and kills the command', withDiagnostics(async () => {
  const needle = `4.${randomInt(100000, 999999)}`;
  const marker = `/home/user/after-timeout-${needle}.txt`;
  const t0 = Date.now();
  const err = await rejection('timeoutMs 1000 on a 4 s command', () =>
    sbx.commands.run(`sleep ${needle}; echo done > ${marker}`, { timeoutMs: 1000 }));
  const took = Date.now() - t0;
  assertError(err, TimeoutError, null, 'command timeout');
  assert.ok(took < 3500, `the timeout took ${took} ms to surface (limit 1000 ms)`);

  // The command (the shell and its sleep) is gone, for envd and on the machine.
  await waitFor('the timed-out command to disappear', () => hostProcessesMatching(needle).length === 0,
    { timeoutMs: 5000, intervalMs: 250 })
    .catch((e) => {
      throw new Error(`${e.message}; still running: ${JSON.stringify(hostProcessesMatching(needle))}`);
    });
  const listed = (await sbx.commands.list()).filter((p) => p.args.join(' ').includes(needle));
  assert.deepEqual(listed, [], 'commands.list still shows the timed-out command');

  // Had it survived, the marker would appear 4 s after the start.
  const wait = t0 + 6000 - Date.now();
  if (wait > 0) await sleep(wait);
  assert.equal(await sbx.files.exists(marker), false, 'the timed-out command kept running and wrote its marker');
}));

test('background command: list, kill, wait reports the kill', withDiagnostics(async () => {
  const needle = `61.${randomInt(100000, 999999)}`;
  const handle = await sbx.commands.run(`echo started; sleep ${needle}`, { background: true });
  assert.ok(Number.isInteger(handle.pid) && handle.pid > 0, `pid ${handle.pid}`);

  await waitFor('the background command to print', () => handle.stdout === 'started\n', { timeoutMs: 5000 });
  const listed = await sbx.commands.list();
  const mine = listed.find((p) => p.pid === handle.pid);
  assert.ok(mine, `commands.list does not show pid ${handle.pid}: ${JSON.stringify(listed)}`);
  assert.equal(mine.cmd, '/bin/bash');
  assert.deepEqual(mine.args, ['-l', '-c', `echo started; sleep ${needle}`]);

  assert.equal(await handle.kill(), true);
  const err = await rejection('wait() after kill', () => handle.wait());
  assertError(err, CommandExitError, /signal: killed/, 'wait() after kill');
  assert.equal(err.exitCode, -1);

  await waitFor('the killed command to leave commands.list', async () =>
    !(await sbx.commands.list()).some((p) => p.pid === handle.pid), { timeoutMs: 5000 });
  await waitFor('the killed command to disappear', () => hostProcessesMatching(needle).length === 0,
    { timeoutMs: 5000 })
    .catch((e) => {
      throw new Error(`${e.message}; still running: ${JSON.stringify(hostProcessesMatching(needle))}`);
    });
  assert.equal(await sbx.commands.kill(handle.pid), false, 'killing a finished pid -> not_found -> false');
}));

test('background command finishes on its own; wait() returns the result', withDiagnostics(async () => {
  const handle = await sbx.commands.run('sleep 0.5; echo bg-done; exit 0', { background: true });
  const result = await handle.wait();
  assert.equal(result.exitCode, 0);
  assert.equal(result.stdout, 'bg-done\n');
}));

test('stdin: sendStdin and closeStdin', withDiagnostics(async () => {
  const handle = await sbx.commands.run('cat; echo "<eof>"', { background: true, stdin: true, timeoutMs: 30_000 });
  await sbx.commands.sendStdin(handle.pid, 'line one\n');
  await sbx.commands.sendStdin(handle.pid, new TextEncoder().encode('line two ü\n'));
  await sbx.commands.closeStdin(handle.pid);
  const result = await handle.wait();
  assert.equal(result.stdout, 'line one\nline two ü\n<eof>\n');
}));

test('commands.connect re-attaches to a running command', withDiagnostics(async () => {
  const handle = await sbx.commands.run(
    'for i in 1 2 3 4 5 6 7 8; do echo tick-$i; sleep 0.25; done', { background: true });
  await handle.disconnect();
  const seen = [];
  const again = await sbx.commands.connect(handle.pid, { onStdout: (d) => seen.push(d) });
  const result = await again.wait();
  assert.equal(result.exitCode, 0);
  assert.match(seen.join(''), /tick-8\n$/, `re-attached output: ${JSON.stringify(seen.join(''))}`);
}));

test('python, python3 and pip are on the PATH', withDiagnostics(async () => {
  const r = await sbx.commands.run('python --version && python3 -c "print(6 * 7)" && pip --version');
  assert.match(r.stdout + r.stderr, /Python 3\./);
  assert.match(r.stdout, /^42$/m);
  assert.match(r.stdout, /^pip \d+/m);
}));

test('timeoutMs 0 (no Connect-Timeout-Ms) runs to completion', withDiagnostics(async () => {
  const r = await sbx.commands.run('sleep 0.2; echo unbounded', { timeoutMs: 0 });
  assert.equal(r.stdout, 'unbounded\n');
}));
