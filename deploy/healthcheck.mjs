// Container healthchecks (docker-compose.yml), without curl in the image:
//   node deploy/healthcheck.mjs https://localhost:8645/readyz CA_FILE   a peer: 200 from /readyz, server verified against CA_FILE
//   node deploy/healthcheck.mjs --rpc http://localhost:8545              the L1: eth_chainId answers
import { readFileSync } from 'node:fs';
import { request as http } from 'node:http';
import { request as https } from 'node:https';

const [first, second] = process.argv.slice(2);
const rpc = first === '--rpc';
const url = new URL(rpc ? second : first);
const body = rpc ? JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }) : undefined;
const opts = { method: rpc ? 'POST' : 'GET', timeout: 4000, headers: body ? { 'content-type': 'application/json' } : {} };
if (url.protocol === 'https:') Object.assign(opts, { ca: readFileSync(second), minVersion: 'TLSv1.3' });
const req = (url.protocol === 'https:' ? https : http)(url, opts, (res) => {
  let text = '';
  res.on('data', (d) => (text += d));
  res.on('end', () => {
    const ok = res.statusCode === 200 && (!rpc || /"result"/.test(text));
    if (!ok) console.error(`${url.href}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
    process.exit(ok ? 0 : 1);
  });
});
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', (e) => {
  console.error(`${url.href}: ${e.message}`);
  process.exit(1);
});
req.end(body);
