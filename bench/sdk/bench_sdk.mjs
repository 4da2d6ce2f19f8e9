// bench_sdk.mjs - the official E2B JS SDK (npm `e2b`, pinned in package.json)
// doing the benchmark's lifecycle against a running genesis_e2b_emulator --bench.
//
//   node bench/sdk/bench_sdk.mjs --url URL --api-key KEY [--jobs N] [--in-flight C]
//                                [--latency-ms L] [--sdk-dir DIR]
//
// C async workers share N lifecycles; each lifecycle is exactly:
//   Sandbox.create(), one sandbox.files.write([...two files...]) (one multipart
//   request), sandbox.commands.run('mkdir -p results && exec python evaluate.py
//   --program_path main.py --results_dir results'), sandbox.files.read() of
//   results/metrics.json and results/correct.json, sandbox.kill().
// Every lifecycle must succeed and read back the emulator's fixed results.
// Like a launcher that honours the evaluation contract (and like genesis-launch),
// every lifecycle also does the local file work: it reads the candidate and the
// evaluator from disk, and writes job_log.out / job_log.err (the command's
// output), metrics.json and correct.json into a results folder of its own under
// $TMPDIR (--no-local-files leaves that out; --keep-files leaves the folder in place
// for the caller to remove).
//
// Prints one JSON object on stdout (the field names genesis_bench_e2b --json uses):
// wall, ideal (6 x L x ceil(N / C)), this process's CPU over the lifecycles only
// (process.cpuUsage; module loading excluded), its peak RSS (getrusage maxRSS),
// and the deltas of the emulator's /_emulator/stats around the run.
// --latency-ms only enters the ideal: the emulator's own setting adds the latency.
// Over HTTPS, NODE_EXTRA_CA_CERTS names the CA of the emulator's certificate.
// Exit status: 0 every lifecycle ok, 1 some failed, 2 usage.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function usage(message) {
  if (message) process.stderr.write(`bench_sdk: ${message}\n`);
  process.stderr.write(
    'usage: node bench_sdk.mjs --url URL --api-key KEY [--jobs N] [--in-flight C] [--latency-ms L] [--sdk-dir DIR] [--no-local-files] [--keep-files]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = {
    url: process.env.E2B_API_URL,
    apiKey: process.env.E2B_API_KEY,
    jobs: 1000,
    inFlight: 100,
    latencyMs: 0,
    sdkDir: process.env.GENESIS_BENCH_SDK_DIR || here,
    localFiles: true,
    keepFiles: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    const int = (v) => {
      if (!/^\d+$/.test(v)) usage(`${a}: '${v}' is not a non-negative integer`);
      return Number(v);
    };
    if (a === '--url') o.url = value();
    else if (a === '--api-key') o.apiKey = value();
    else if (a === '--jobs' || a === '-n') o.jobs = int(value());
    else if (a === '--in-flight' || a === '-c') o.inFlight = int(value());
    else if (a === '--latency-ms' || a === '-l') o.latencyMs = int(value());
    else if (a === '--sdk-dir') o.sdkDir = value();
    else if (a === '--no-local-files') o.localFiles = false;
    else if (a === '--keep-files') o.keepFiles = true;
    else if (a === '--help' || a === '-h') usage();
    else usage(`unknown option '${a}'`);
  }
  if (!o.url) usage('--url (or E2B_API_URL) is required');
  if (!o.apiKey) usage('--api-key (or E2B_API_KEY) is required');
  if (o.jobs < 1 || o.inFlight < 1) usage('--jobs and --in-flight must be >= 1');
  o.url = o.url.replace(/\/+$/, '');
  return o;
}

const o = parseArgs(process.argv.slice(2));

// The package has no "exports" map: Node resolves its "main" (CommonJS build).
const req = createRequire(path.join(o.sdkDir, 'package.json'));
const { Sandbox } = req('e2b');
const sdkVersion = req('e2b/package.json').version;

// GET /_emulator/stats on a connection of its own (closed afterwards), so that the
// probe adds exactly one connection (and one TLS handshake over HTTPS).
function emulatorStats() {
  const url = new URL('/_emulator/stats', o.url);
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const r = mod.get(url, { agent: false, headers: { 'X-API-Key': o.apiKey, Connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`GET /_emulator/stats -> ${res.statusCode} ${body}`));
        else {
          try { resolve(JSON.parse(body)); } catch (err) { reject(err); }
        }
      });
    });
    r.on('error', reject);
  });
}

const connection = { apiUrl: o.url, sandboxUrl: o.url, apiKey: o.apiKey };
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'genesis-bench-sdk-'));
const programPath = path.join(work, 'main.py');
const evaluatorPath = path.join(work, 'evaluate.py');
fs.writeFileSync(programPath, 'def solve():\n    return 1\n');
fs.writeFileSync(evaluatorPath, "import json, os\n# not run: the emulator's bench mode answers at once\n");
fs.mkdirSync(path.join(work, 'results'));
const command = 'mkdir -p results && exec python evaluate.py --program_path main.py --results_dir results';

function checkResults(metricsText, correctText) {
  const metrics = JSON.parse(metricsText);
  const correct = JSON.parse(correctText);
  if (metrics.combined_score !== 1 || typeof metrics.public !== 'object' || typeof metrics.private !== 'object')
    throw new Error(`unexpected metrics.json: ${metricsText}`);
  if (correct.correct !== true || correct.error !== null) throw new Error(`unexpected correct.json: ${correctText}`);
}

async function lifecycle(index) {
  const files = [
    { path: 'main.py', data: o.localFiles ? fs.readFileSync(programPath) : 'def solve():\n    return 1\n' },
    { path: 'evaluate.py', data: o.localFiles ? fs.readFileSync(evaluatorPath) : 'import json, os\n' },
  ];
  const sandbox = await Sandbox.create(connection);
  let killed = false;
  try {
    const written = await sandbox.files.write(files);
    if (written.length !== 2) throw new Error(`files.write reported ${written.length} files, expected 2`);
    let out = '';
    let err = '';
    const run = await sandbox.commands.run(command, {
      onStdout: (data) => { out += data; },
      onStderr: (data) => { err += data; },
    });
    if (run.exitCode !== 0) throw new Error(`the command exited with ${run.exitCode}`);
    const metricsText = await sandbox.files.read('results/metrics.json');
    const correctText = await sandbox.files.read('results/correct.json');
    checkResults(metricsText, correctText);
    if (o.localFiles) {
      const dir = path.join(work, 'results', String(index));
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'job_log.out'), out);
      fs.writeFileSync(path.join(dir, 'job_log.err'), err);
      fs.writeFileSync(path.join(dir, 'metrics.json'), metricsText);
      fs.writeFileSync(path.join(dir, 'correct.json'), correctText);
    }
    killed = true;
    if (!(await sandbox.kill())) throw new Error('kill: the sandbox was not found');
  } finally {
    if (!killed) await sandbox.kill().catch(() => {});
  }
}

const before = await emulatorStats();

let next = 0;
let ok = 0;
let failed = 0;
const errors = [];
async function worker() {
  while (next < o.jobs) {
    const index = next++;
    try {
      await lifecycle(index);
      ok++;
    } catch (err) {
      failed++;
      if (errors.length < 3) errors.push(`${err?.name ?? 'Error'}: ${err?.message ?? err}`);
    }
  }
}

const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
await Promise.all(Array.from({ length: Math.min(o.inFlight, o.jobs) }, worker));
const t1 = process.hrtime.bigint();
const cpu = process.cpuUsage(cpu0);
const maxRssKiB = process.resourceUsage().maxRSS;

const after = await emulatorStats();
if (!o.keepFiles) fs.rmSync(work, { recursive: true, force: true });

const n = o.jobs;
const wall = Number(t1 - t0) / 1e9;
const ideal = (6 * o.latencyMs / 1000) * Math.ceil(n / o.inFlight);
const tls = o.url.startsWith('https:');
const byEndpoint = {};
for (const [name, count] of Object.entries(after.requests.by_endpoint)) {
  const d = count - (before.requests.by_endpoint[name] ?? 0);
  if (d) byEndpoint[name] = d;
}
const round = (x, digits = 4) => Number(x.toFixed(digits));
// The second probe's own connection (and handshake) is in `after`.
const connections = after.connections_accepted - before.connections_accepted - 1;
const handshakes = after.tls_handshakes - before.tls_handshakes - (tls ? 1 : 0);

const result = {
  client: 'sdk',
  client_version: `e2b ${sdkVersion}, node ${process.versions.node}`,
  transport: tls ? 'tls' : 'http',
  jobs: n,
  in_flight: o.inFlight,
  latency_ms: o.latencyMs,
  jobs_ok: ok,
  jobs_failed: failed,
  errors,
  wall_s: round(wall),
  ideal_s: round(ideal),
  wall_over_ideal: ideal > 0 ? round(wall / ideal) : null,
  cpu_ms_per_lifecycle: round((cpu.user + cpu.system) / 1000 / n),
  cpu_user_ms_per_lifecycle: round(cpu.user / 1000 / n),
  cpu_system_ms_per_lifecycle: round(cpu.system / 1000 / n),
  peak_rss_mib: round(maxRssKiB / 1024, 1),
  requests_per_lifecycle: round((after.requests.total - before.requests.total) / n),
  connections_per_lifecycle: round(connections / n),
  tls_handshakes_per_lifecycle: round(handshakes / n),
  tls_resumed_per_lifecycle: round(((after.tls_resumed ?? 0) - (before.tls_resumed ?? 0)) / n),
  emulator_cpu_ms_per_lifecycle: round((after.cpu_seconds.total - before.cpu_seconds.total) * 1000 / n),
  requests_by_endpoint: byEndpoint,
};
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(failed === 0 && ok === n ? 0 : 1);
