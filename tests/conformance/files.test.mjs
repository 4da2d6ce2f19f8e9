// files.test.mjs - envd's /files endpoints (upload and download) and the
// filesystem.Filesystem RPCs through the official SDK.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';

import {
  FileNotFoundError,
  FileType,
  InvalidArgumentError,
  NotFoundError,
  SandboxError,
  assertError,
  cleanup,
  createSandbox,
  rejection,
  runTag,
  withDiagnostics,
} from './support.mjs';

let sbx;

before(async () => {
  sbx = await createSandbox('base', { timeoutMs: 300_000, metadata: { run: runTag, kind: 'files' } });
});
after(cleanup);

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

// The sha256 of a file as seen inside the sandbox (python3 is on the PATH).
async function sandboxSha256(path) {
  const r = await sbx.commands.run(
    `python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' ${path}`);
  return r.stdout.trim();
}

function assertSameBytes(actual, expected, what) {
  assert.ok(actual instanceof Uint8Array, `${what}: expected a Uint8Array, got ${actual?.constructor?.name}`);
  assert.equal(actual.byteLength, expected.byteLength, `${what}: length`);
  assert.ok(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(Buffer.from(expected)),
    `${what}: bytes differ (sha256 ${sha256(actual)} vs ${sha256(expected)})`);
}

test('write and read text (relative and absolute paths)', withDiagnostics(async () => {
  const text = 'hello from the SDK — ü ✓ 🚀\nsecond line\n';
  const info = await sbx.files.write('notes/hello.txt', text);
  assert.equal(info.path, '/home/user/notes/hello.txt', 'relative paths resolve against /home/user');
  assert.equal(info.name, 'hello.txt');
  assert.equal(info.type, FileType.FILE);

  assert.equal(await sbx.files.read('notes/hello.txt'), text);
  assert.equal(await sbx.files.read('/home/user/notes/hello.txt'), text);

  // The file really is in the sandbox's /home/user.
  const r = await sbx.commands.run('cat /home/user/notes/hello.txt');
  assert.equal(r.stdout, text);

  // Overwrite with something shorter: truncated, not patched.
  await sbx.files.write('/home/user/notes/hello.txt', 'short');
  assert.equal(await sbx.files.read('notes/hello.txt'), 'short');
}));

test('write a 5 MiB random ArrayBuffer and read it back byte-exact', withDiagnostics(async () => {
  const bytes = randomBytes(5 * 1024 * 1024);
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const info = await sbx.files.write('/home/user/big/random.bin', ab);
  assert.equal(info.path, '/home/user/big/random.bin');

  const back = await sbx.files.read('/home/user/big/random.bin', { format: 'bytes' });
  assertSameBytes(back, bytes, '5 MiB read back');
  assert.equal(await sandboxSha256('/home/user/big/random.bin'), sha256(bytes), 'sha256 inside the sandbox');

  const blob = await sbx.files.read('/home/user/big/random.bin', { format: 'blob' });
  assert.equal(blob.size, bytes.byteLength, 'format blob size');

  const stream = await sbx.files.read('/home/user/big/random.bin', { format: 'stream' });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assertSameBytes(new Uint8Array(Buffer.concat(chunks)), bytes, "format 'stream'");
}));

test('write every byte value (Uint8Array, Blob) and read back as bytes', withDiagnostics(async () => {
  const all = new Uint8Array(256 * 4);
  for (let i = 0; i < all.length; i++) all[i] = i % 256;

  await sbx.files.write('bin/all-bytes.bin', all);
  assertSameBytes(await sbx.files.read('bin/all-bytes.bin', { format: 'bytes' }), all, 'Uint8Array upload');

  await sbx.files.write('bin/blob.bin', new Blob([all, all]));
  const twice = new Uint8Array([...all, ...all]);
  assertSameBytes(await sbx.files.read('bin/blob.bin', { format: 'bytes' }), twice, 'Blob upload');

  // Bytes that are not valid UTF-8 survive the 'bytes' format untouched.
  const invalidUtf8 = new Uint8Array([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80]);
  await sbx.files.write('bin/invalid-utf8.bin', invalidUtf8.buffer);
  assertSameBytes(await sbx.files.read('bin/invalid-utf8.bin', { format: 'bytes' }), invalidUtf8, 'invalid UTF-8');
}));

test('empty file', withDiagnostics(async () => {
  await sbx.files.write('empty.txt', '');
  assert.equal(await sbx.files.read('empty.txt'), '');
  const bytes = await sbx.files.read('empty.txt', { format: 'bytes' });
  assert.equal(bytes.byteLength, 0);
}));

test('multi-file write in one request', withDiagnostics(async () => {
  const bin = randomBytes(70_000);
  const infos = await sbx.files.write([
    { path: 'multi/a.txt', data: 'file A\n' },
    { path: '/home/user/multi/deeper/b.bin', data: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) },
    { path: 'multi/c.txt', data: new Blob(['file C']) },
  ]);
  assert.ok(Array.isArray(infos), 'files.write([...]) returns an array');
  assert.deepEqual(infos.map((i) => i.path).sort(),
    ['/home/user/multi/a.txt', '/home/user/multi/c.txt', '/home/user/multi/deeper/b.bin']);
  assert.equal(await sbx.files.read('multi/a.txt'), 'file A\n');
  assertSameBytes(await sbx.files.read('multi/deeper/b.bin', { format: 'bytes' }), bin, 'multi-file binary part');
  assert.equal(await sbx.files.read('/home/user/multi/c.txt'), 'file C');
}));

test('octet-stream uploads: ReadableStream and useOctetStream', withDiagnostics(async () => {
  const chunks = [randomBytes(100_000), randomBytes(3), randomBytes(64 * 1024)];
  const stream = new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(new Uint8Array(c));
      controller.close();
    },
  });
  await sbx.files.write('octet/stream.bin', stream);
  assertSameBytes(await sbx.files.read('octet/stream.bin', { format: 'bytes' }), Buffer.concat(chunks), 'ReadableStream upload');

  await sbx.files.write('octet/plain.txt', 'sent as application/octet-stream', { useOctetStream: true });
  assert.equal(await sbx.files.read('octet/plain.txt'), 'sent as application/octet-stream');
}));

test('gzip upload (octet-stream with Content-Encoding: gzip)', withDiagnostics(async () => {
  const big = randomBytes(300_000);
  await sbx.files.write('octet/gzip.bin', big.buffer.slice(big.byteOffset, big.byteOffset + big.byteLength), { gzip: true });
  assertSameBytes(await sbx.files.read('octet/gzip.bin', { format: 'bytes' }), big, 'gzip upload');
}));

test('read errors: missing file and directory', withDiagnostics(async () => {
  const missing = await rejection('read a missing file', () => sbx.files.read('no/such/file.txt'));
  assertError(missing, FileNotFoundError, null, 'read a missing file');

  await sbx.files.makeDir('a-directory');
  const dir = await rejection('read a directory', () => sbx.files.read('a-directory'));
  assert.ok(dir instanceof SandboxError, `read a directory: expected a SandboxError subclass, got ${dir?.name}: ${dir?.message}`);

  const onDir = await rejection('write onto a directory', () => sbx.files.write('a-directory', 'x'));
  assertError(onDir, InvalidArgumentError, null, 'write onto a directory');
}));

test('exists, makeDir, list, getInfo, rename, remove', withDiagnostics(async () => {
  const base = `/home/user/fs-${runTag}`;
  assert.equal(await sbx.files.exists(base), false);
  assert.equal(await sbx.files.makeDir(`${base}/sub/deeper`), true, 'makeDir creates parents');
  assert.equal(await sbx.files.makeDir(`${base}/sub`), false, 'makeDir on an existing directory -> false');
  assert.equal(await sbx.files.exists(`${base}/sub/deeper`), true);

  await sbx.files.write(`${base}/one.txt`, '12345');
  await sbx.files.write(`${base}/sub/two.txt`, 'two');

  const entries = await sbx.files.list(base);
  const byName = Object.fromEntries(entries.map((e) => [e.name, e]));
  assert.deepEqual(Object.keys(byName).sort(), ['one.txt', 'sub']);
  assert.equal(byName['one.txt'].type, FileType.FILE);
  assert.equal(byName['one.txt'].path, `${base}/one.txt`);
  assert.equal(byName['one.txt'].size, 5);
  assert.equal(byName.sub.type, FileType.DIR);

  const deep = await sbx.files.list(base, { depth: 2 });
  assert.deepEqual(deep.map((e) => e.path).sort(),
    [`${base}/one.txt`, `${base}/sub`, `${base}/sub/deeper`, `${base}/sub/two.txt`]);

  const info = await sbx.files.getInfo(`${base}/one.txt`);
  assert.equal(info.name, 'one.txt');
  assert.equal(info.type, FileType.FILE);
  assert.equal(info.size, 5);
  assert.ok(info.modifiedTime instanceof Date && Math.abs(info.modifiedTime.getTime() - Date.now()) < 120_000,
    `modifiedTime ${info.modifiedTime}`);

  const moved = await sbx.files.rename(`${base}/one.txt`, `${base}/sub/moved.txt`);
  assert.equal(moved.path, `${base}/sub/moved.txt`);
  assert.equal(await sbx.files.exists(`${base}/one.txt`), false);
  assert.equal(await sbx.files.read(`${base}/sub/moved.txt`), '12345');

  const listMissing = await rejection('list a missing directory', () => sbx.files.list(`${base}/nope`));
  assertError(listMissing, NotFoundError, null, 'list a missing directory');

  await sbx.files.remove(`${base}/sub/moved.txt`);
  assert.equal(await sbx.files.exists(`${base}/sub/moved.txt`), false);
  await sbx.files.remove(base);  // recursive
  assert.equal(await sbx.files.exists(base), false);
  await sbx.files.remove(base);  // absent: still fine
}));

test('pre-signed uploadUrl/downloadUrl work as returned', withDiagnostics(async () => {
  // With E2B_SANDBOX_URL set, the SDK builds these on that URL, so they carry no
  // sandbox ID (no E2b-Sandbox-Id header either): only the signature, made from
  // the sandbox's envdAccessToken, tells which sandbox is meant.
  const hint = ' (the URL names no sandbox: the emulator must find it from the signature)';
  await sbx.files.write('signed/download.txt', 'signed download');
  const down = await sbx.downloadUrl('/home/user/signed/download.txt');
  const r1 = await fetch(down);
  assert.equal(r1.status, 200, `GET ${down} -> ${r1.status} ${await r1.clone().text()}${hint}`);
  assert.equal(await r1.text(), 'signed download');

  const up = await sbx.uploadUrl('/home/user/signed/upload.txt', { useSignatureExpiration: 60 });
  const form = new FormData();
  form.append('file', new Blob(['signed upload']), 'upload.txt');
  const r2 = await fetch(up, { method: 'POST', body: form });
  assert.equal(r2.status, 200, `POST ${up} -> ${r2.status} ${await r2.clone().text()}${hint}`);
  assert.equal(await sbx.files.read('/home/user/signed/upload.txt'), 'signed upload');

  // A tampered signature is refused.
  const bad = new URL(down);
  bad.searchParams.set('signature', 'v1_' + 'A'.repeat(43));
  const r3 = await fetch(bad);
  assert.ok(r3.status === 401 || r3.status === 404, `a wrong signature -> ${r3.status}, expected 401 (or 404)`);
}));
