// emulator_admin.mjs - small helpers run_conformance.sh uses around the SDK tests.
//
//   node emulator_admin.mjs parse-ready FILE   print shell assignments from the emulator's JSON line
//   node emulator_admin.mjs stats              print GET /_emulator/stats
//   node emulator_admin.mjs check-clean        exit 0 when no sandbox is live; otherwise print
//                                              the stats, kill the leftovers and exit 1
//
// Uses E2B_API_URL and E2B_API_KEY (and NODE_EXTRA_CA_CERTS for HTTPS) like the SDK.
import { readFileSync } from 'node:fs';

const [cmd, arg] = process.argv.slice(2);

function shellQuote(s) {
  return `'${String(s).replace(/'/g, `'"'"'`)}'`;
}

function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`emulator_admin: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

async function stats() {
  const url = `${env('E2B_API_URL').replace(/\/+$/, '')}/_emulator/stats`;
  const res = await fetch(url, { headers: { 'X-API-Key': env('E2B_API_KEY') } });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url} -> ${res.status}: ${text}`);
  return JSON.parse(text);
}

function liveIds(s) {
  return (s.live_sandboxes ?? []).map((x) =>
    typeof x === 'string' ? x : x.sandboxID ?? x.sandbox_id ?? x.id);
}

async function main() {
  switch (cmd) {
    case 'parse-ready': {
      // The first line of the emulator's stdout.
      const line = readFileSync(arg, 'utf8').split('\n')[0];
      let ready;
      try {
        ready = JSON.parse(line);
      } catch (err) {
        console.error(`emulator_admin: the emulator's first stdout line is not JSON: ${JSON.stringify(line)}`);
        process.exit(1);
      }
      const missing = ['api_url', 'sandbox_url', 'api_key', 'port', 'pid'].filter((k) => ready[k] === undefined);
      if (missing.length) {
        console.error(`emulator_admin: the ready line lacks ${missing.join(', ')}: ${line}`);
        process.exit(1);
      }
      console.log(`ready_api_url=${shellQuote(ready.api_url)}`);
      console.log(`ready_sandbox_url=${shellQuote(ready.sandbox_url)}`);
      console.log(`ready_api_key=${shellQuote(ready.api_key)}`);
      console.log(`ready_port=${shellQuote(ready.port)}`);
      console.log(`ready_pid=${shellQuote(ready.pid)}`);
      console.log(`ready_tls=${shellQuote(ready.tls ? 1 : 0)}`);
      return;
    }
    case 'stats':
      console.log(JSON.stringify(await stats()));
      return;
    case 'check-clean': {
      const s = await stats();
      const ids = liveIds(s);
      if ((s.live ?? ids.length) === 0 && ids.length === 0) {
        console.log(`emulator stats: created=${s.created} killed=${s.killed} expired=${s.expired} ` +
          `vanished=${s.vanished} live=0 requests=${JSON.stringify(s.requests)}`);
        return;
      }
      console.error(`FAIL: ${s.live ?? ids.length} sandbox(es) still live after the tests: ${JSON.stringify(s)}`);
      const base = env('E2B_API_URL').replace(/\/+$/, '');
      for (const id of ids) {
        const res = await fetch(`${base}/sandboxes/${encodeURIComponent(id)}`, {
          method: 'DELETE', headers: { 'X-API-Key': env('E2B_API_KEY') },
        }).catch((e) => ({ status: `error ${e.message}` }));
        console.error(`  killed leftover ${id}: ${res.status}`);
      }
      process.exit(1);
    }
    default:
      console.error('usage: node emulator_admin.mjs parse-ready FILE | stats | check-clean');
      process.exit(2);
  }
}

main().catch((err) => {
  console.error(`emulator_admin ${cmd}: ${err.stack ?? err}`);
  process.exit(1);
});
