import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { findCommand } from '../../src/cli/commands.ts';
import { FLAG_ENV, OTHER_ENV, loadConfigFile, resolveArgs, type Args } from '../../src/cli/config.ts';
import { loadPolicyFile } from '../../src/policy/policy-file.ts';
import { OPTIONS as CLIENT_OPTIONS } from '../../examples/sign-batch.ts';

/**
 * docker-compose.yml, the Dockerfile and deploy/ checked without a Docker engine: every potluck
 * command a service (or deploy/bootstrap.sh) runs goes through the CLI's real table and config
 * resolution, with container paths mapped back to repository files through the bind mounts,
 * secrets and the image's COPY lines.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const repo = (p: string) => join(ROOT, p);
const POTLUCK_ENTRY = ['node', 'bin/potluck.mjs'];

type Obj = Record<string, unknown>;
interface Service extends Obj {
  build?: { context: string; dockerfile?: string; target?: string };
  image?: string;
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string> | string[];
  volumes?: (string | { type: string; source: string; target: string })[];
  secrets?: (string | { source: string; target?: string })[];
  env_file?: string | string[];
  depends_on?: string[] | Record<string, { condition: string }>;
  networks?: string[] | Record<string, { aliases?: string[] } | null>;
  healthcheck?: { test: string[] };
  restart?: string;
}

const compose = parse(readFileSync(repo('docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service>; volumes?: Obj; networks?: Obj; secrets?: Record<string, { file: string }> };
const services = Object.entries(compose.services);

// --- the Dockerfile: stages, their WORKDIR, ENTRYPOINT, USER, VOLUME and what they COPY from the repo
interface Stage { name: string; base: string; workdir: string; entrypoint?: string[]; user?: string; volumes: string[]; copies: { from: string; to: string; stage?: boolean }[]; run: string[] }
const dockerfileText = readFileSync(repo('Dockerfile'), 'utf8');
const stages: Stage[] = [];
{
  const args = new Map<string, string>();
  for (const line of dockerfileText.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))) {
    const [op, ...rest] = line.split(/\s+/);
    const text = rest.join(' ');
    const st = stages.at(-1);
    switch (op!.toUpperCase()) {
      case 'ARG': {
        const [k, v] = text.split('=');
        if (v !== undefined) args.set(k!, v);
        break;
      }
      case 'FROM': {
        const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(text)!;
        const base = m[1]!.replace(/\$\{(\w+)\}/g, (_, k: string) => args.get(k) ?? '');
        const parent = stages.find((s) => s.name === base);
        stages.push({ name: m[2] ?? '', base, workdir: parent?.workdir ?? '/', entrypoint: parent?.entrypoint, volumes: [], copies: parent ? [...parent.copies] : [], run: [] });
        break;
      }
      case 'WORKDIR': st!.workdir = posix.resolve(st!.workdir, text); break;
      case 'ENTRYPOINT': st!.entrypoint = JSON.parse(text) as string[]; break;
      case 'USER': st!.user = text; break;
      case 'VOLUME': st!.volumes.push(...(JSON.parse(text) as string[])); break;
      case 'RUN': st!.run.push(text); break;
      case 'COPY': {
        const parts = text.split(/\s+/);
        const dest = parts.at(-1)!;
        const to = posix.resolve(st!.workdir, dest);
        // From another stage: only node_modules (npm ci of this package-lock), mapped to the installed tree.
        if (parts[0]!.startsWith('--from')) {
          if (parts[1]!.endsWith('/node_modules')) st!.copies.push({ from: 'node_modules', to, stage: true });
          break;
        }
        const sources = parts.slice(0, -1);
        for (const s of sources) st!.copies.push({ from: s, to: sources.length > 1 || dest.endsWith('/') ? posix.join(to, posix.basename(s)) : to });
        break;
      }
    }
  }
}
const stage = (name: string) => stages.find((s) => s.name === name);

/** `service`'s view of its file system: container path → repo file, or undefined. */
function mapper(name: string, s: Service): (p: string) => string | undefined {
  const img = s.build ? stage(s.build.target ?? stages.at(-1)!.name) : undefined;
  const binds: [string, string][] = [];
  for (const v of s.volumes ?? []) {
    const [src, dst] = typeof v === 'string' ? v.split(':') : [v.source, v.target];
    if (src!.startsWith('.') || src!.startsWith('/')) binds.push([posix.normalize(dst!), repo(src!)]);
  }
  for (const sec of s.secrets ?? []) {
    const [source, target] = typeof sec === 'string' ? [sec, sec] : [sec.source, sec.target ?? sec.source];
    const file = compose.secrets?.[source]?.file;
    assert.ok(file, `${name}: secret "${source}" is not declared with a file`);
    binds.push([posix.join('/run/secrets', target), repo(file)]);
  }
  return (p: string) => {
    const abs = posix.resolve(img?.workdir ?? '/', p);
    for (const [dst, src] of binds) {
      if (abs === dst) return src;
      if (abs.startsWith(dst + '/')) return join(src, abs.slice(dst.length + 1));
    }
    for (const c of img?.copies ?? []) {
      if (abs === c.to) return repo(c.from);
      if (abs.startsWith(c.to + '/')) return join(repo(c.from), abs.slice(c.to.length + 1));
    }
    return undefined;
  };
}

const envOf = (s: Service): Record<string, string> =>
  Array.isArray(s.environment) ? Object.fromEntries(s.environment.map((e) => [e.split('=')[0]!, e.split('=').slice(1).join('=')])) : { ...s.environment };

/** Resolves a potluck invocation as the container would; throws (naming the flag or file) if it would not start. */
function resolveInService(name: string, s: Service, argv: string[]): Args {
  const found = findCommand(argv);
  assert.ok(found, `${name}: "potluck ${argv.join(' ')}" is not a potluck command`);
  const map = mapper(name, s);
  const read = (p: string) => {
    const f = map(p);
    if (!f || !existsSync(f)) throw Object.assign(new Error(`${p} is not a file in the repo mounted into ${name}`), { code: 'ENOENT' });
    return readFileSync(f, 'utf8');
  };
  const a = resolveArgs(found.spec, found.rest, envOf(s), read);
  if (found.spec.flags.some((f) => f.name === 'passphrase-file')) {
    const pf = a.str('passphrase-file');
    if (pf) assert.ok(map(pf) && existsSync(map(pf)!), `${name}: ${a.origin('passphrase-file')} ${pf} is neither a secret nor a bind mount`);
    else assert.ok(envOf(s)['POTLUCK_PASSPHRASE'], `${name}: potluck ${found.spec.name} needs --passphrase-file or POTLUCK_PASSPHRASE`);
  }
  return a;
}

/** `potluck …` lines of a shell script (continuations joined, quotes removed). */
function potluckLines(script: string): string[][] {
  return script.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l.startsWith('potluck ')).map((line) => {
    const out: string[] = [];
    let cur = '', quote = '', started = false;
    for (const ch of line) {
      if (quote) {
        if (ch === quote) quote = '';
        else cur += ch;
      } else if (ch === '"' || ch === "'") [quote, started] = [ch, true];
      else if (/\s/.test(ch)) {
        if (started) out.push(cur);
        [cur, started] = ['', false];
      } else [cur, started] = [cur + ch, true];
    }
    assert.equal(quote, '', `unterminated quote in: ${line}`);
    if (started) out.push(cur);
    assert.ok(!out.some((t) => t.includes('$')), `a potluck line with a shell variable cannot be checked: ${line}`);
    return out.slice(1);
  });
}

interface Invocation { service: string; argv: string[]; args: Args }
/** Every potluck invocation of every service (its command, or the lines of the script it runs) that resolves. */
const invocations: Invocation[] = [];
const broken: string[] = [];
const add = (service: string, argv: string[]) => {
  try {
    invocations.push({ service, argv, args: resolveInService(service, compose.services[service]!, argv) });
  } catch (e) {
    broken.push(`${service}: potluck ${argv.join(' ')}: ${(e as Error).message}`);
  }
};
const scripts = new Map<string, string>();
for (const [name, s] of services) {
  const img = s.build ? stage(s.build.target ?? stages.at(-1)!.name) : undefined;
  const entry = s.entrypoint ?? img?.entrypoint;
  if (!entry) continue;
  if (entry.join(' ') === POTLUCK_ENTRY.join(' ')) {
    add(name, s.command ?? []);
  } else if (entry[0] === 'sh') {
    const file = mapper(name, s)(entry[1]!);
    assert.ok(file && existsSync(file), `${name}: script ${entry[1]} is not in the image`);
    const text = readFileSync(file, 'utf8');
    scripts.set(name, text);
    for (const argv of potluckLines(text)) add(name, argv);
  }
}

test('every potluck command of every service exists, with real flags, required ones present, config files valid', () => {
  assert.deepEqual(broken, []);
  assert.ok(invocations.length > 10, 'the compose file runs potluck commands');
  for (const [name, text] of scripts) assert.match(text, /node \/app\/bin\/potluck\.mjs "\$@"/, `${name}: the script's potluck must be the image's bin/potluck.mjs`);
});

test('every POTLUCK_* variable of every service is a real flag or a documented variable', () => {
  for (const [name, s] of services) {
    for (const k of Object.keys(envOf(s)).filter((k) => k.startsWith('POTLUCK_'))) {
      assert.ok(FLAG_ENV.has(k) || k in OTHER_ENV, `${name}: ${k} is neither a flag's variable nor one of ${Object.keys(OTHER_ENV).join(', ')}`);
    }
  }
});

test('every file, directory, volume, network, secret and dependency a service references exists', () => {
  for (const [name, s] of services) {
    if (s.build) {
      assert.ok(statSync(repo(s.build.context)).isDirectory(), `${name}: build context ${s.build.context}`);
      assert.ok(existsSync(join(repo(s.build.context), s.build.dockerfile ?? 'Dockerfile')), `${name}: dockerfile`);
      if (s.build.target) assert.ok(stage(s.build.target), `${name}: no stage "${s.build.target}" in the Dockerfile`);
    } else assert.ok(s.image, `${name}: neither build nor image`);
    for (const v of s.volumes ?? []) {
      const src = typeof v === 'string' ? v.split(':')[0]! : v.source;
      if (src.startsWith('.') || src.startsWith('/')) assert.ok(existsSync(repo(src)), `${name}: bind mount ${src} does not exist`);
      else assert.ok(compose.volumes && src in compose.volumes, `${name}: volume ${src} is not declared`);
    }
    for (const f of [s.env_file ?? []].flat()) assert.ok(existsSync(repo(f)), `${name}: env_file ${f}`);
    const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
    for (const d of deps) assert.ok(compose.services[d], `${name} depends on "${d}", which is no service`);
    const nets = Array.isArray(s.networks) ? s.networks : Object.keys(s.networks ?? {});
    for (const n of nets) assert.ok(compose.networks && n in compose.networks, `${name}: network ${n} is not declared`);
    mapper(name, s); // secrets declared with files
    const entry = s.entrypoint ?? (s.build ? stage(s.build.target ?? stages.at(-1)!.name)?.entrypoint : undefined);
    if (entry?.[0] === 'node') {
      const script = entry.find((x, i) => i > 0 && !x.startsWith('-') && entry[i - 1] !== '--import');
      const file = script && mapper(name, s)(script);
      assert.ok(file && existsSync(file), `${name}: ${script} is not in the image`);
    }
  }
  for (const [k, sec] of Object.entries(compose.secrets ?? {})) assert.ok(existsSync(repo(sec.file)), `secret ${k}: ${sec.file}`);
});

test('long-running services have healthchecks; peers check /readyz on their API port', () => {
  for (const [name, s] of services) {
    if (s.restart === 'no') continue;
    assert.ok(s.healthcheck?.test?.length, `${name} runs until stopped but has no healthcheck`);
    const [kind, ...cmd] = s.healthcheck!.test;
    assert.ok(kind === 'CMD' || kind === 'CMD-SHELL', `${name}: healthcheck test must start with CMD`);
    if (kind === 'CMD' && cmd[0] === 'node') assert.ok(existsSync(mapper(name, s)(cmd[1]!) ?? ''), `${name}: healthcheck script ${cmd[1]} is not in the image`);
  }
  const peers = invocations.filter((i) => i.args.spec.name === 'start');
  assert.equal(peers.length, 3, 'three org peers');
  for (const p of peers) {
    const s = compose.services[p.service]!;
    assert.notEqual(s.restart, 'no');
    const url = s.healthcheck!.test.find((t) => t.includes('/readyz'));
    assert.ok(url, `${p.service}: the healthcheck must ask /readyz`);
    const api = String(configOf(p).values.get('api'));
    assert.equal(new URL(url).port, api.split(':').at(-1), `${p.service}: /readyz is asked on the API port of "api": ${api}`);
  }
});

/** The config file an invocation read (every peer has one). */
function configOf(inv: Invocation) {
  const path = inv.args.str('config')!;
  assert.ok(path, `${inv.service}: no config file`);
  return loadConfigFile(path, (p) => readFileSync(mapper(inv.service, compose.services[inv.service]!)(p)!, 'utf8'));
}
const homeVolume = (inv: Invocation) => {
  const s = compose.services[inv.service]!;
  const home = inv.args.str('home')!;
  const v = (s.volumes ?? []).map((x) => (typeof x === 'string' ? x.split(':') : [x.source, x.target])).find(([, dst]) => posix.normalize(dst!) === posix.normalize(home));
  assert.ok(v, `${inv.service}: --home ${home} is not a volume (it would not survive the container)`);
  return v[0]!;
};

test('each org: own home volume and config, a one-shot keygen before the peer, a reachable libp2p address', () => {
  const peers = invocations.filter((i) => i.args.spec.name === 'start');
  const keygens = invocations.filter((i) => i.args.spec.name === 'keygen');
  assert.equal(new Set(peers.map(homeVolume)).size, peers.length, 'every peer has its own home volume');
  assert.equal(new Set(peers.map((p) => mapper(p.service, compose.services[p.service]!)(p.args.str('config')!))).size, peers.length, 'every peer has its own config file');
  const answersTo = (name: string) => {
    const nets = compose.services[name]!.networks;
    return [name, ...(Array.isArray(nets) ? [] : Object.values(nets ?? {}).flatMap((n) => n?.aliases ?? []))];
  };
  for (const p of peers) {
    const kg = keygens.find((k) => homeVolume(k) === homeVolume(p));
    assert.ok(kg, `${p.service}: no keygen job on its home volume`);
    assert.equal(compose.services[kg.service]!.restart, 'no', `${kg.service} is a one-shot job`);
    assert.ok(kg.args.flag('exist-ok'), `${kg.service}: --exist-ok, so a second "docker compose up" passes`);
    const dep = compose.services[p.service]!.depends_on as Record<string, { condition: string }>;
    assert.equal(dep?.[kg.service]?.condition, 'service_completed_successfully', `${p.service} starts after ${kg.service}`);
    // The cluster definition's address of this org: the keygen job and the peer must both answer to it.
    const host = /^\/dns[46]?\/([^/]+)\/tcp\/\d+$/.exec(String(configOf(p).values.get('listen')))?.[1];
    assert.ok(host, `${p.service}: "listen" must be /dns4/NAME/tcp/PORT (a name both containers answer to)`);
    for (const svc of [p.service, kg.service]) assert.ok(answersTo(svc).includes(host), `${svc} does not answer to ${host}`);
    // Identity, certificates: made by the init script on the same volume.
    const init = invocations.filter((i) => i.args.spec.name === 'init' && homeVolume(i) === homeVolume(p));
    assert.equal(init.length, 1, `${p.service}: one "potluck init" for its volume`);
    const initHome = init[0]!.args.str('home')!;
    assert.equal(mapper(init[0]!.service, compose.services[init[0]!.service]!)(init[0]!.args.str('config')!), mapper(p.service, compose.services[p.service]!)(p.args.str('config')!), `${p.service}: init and the peer read the same config`);
    const certs = invocations.filter((i) => i.args.spec.name === 'tls issue' && i.args.str('usage') === 'server' && i.args.str('out') === `${initHome}/tls`);
    assert.equal(certs.length, 1, `${p.service}: a server certificate in its tls/`);
    const healthHost = new URL(compose.services[p.service]!.healthcheck!.test.find((t) => t.includes('/readyz'))!).hostname;
    assert.ok(certs[0]!.args.list('dns').includes(healthHost), `${p.service}: its certificate names ${healthHost}, which the healthcheck connects to`);
  }
});

test('the example client signs through a peer whose certificate and policy accept it', () => {
  const [name, s] = services.find(([, x]) => (x.entrypoint ?? []).some((e) => e.endsWith('examples/sign-batch.ts')))!;
  assert.ok(name, 'a client service runs examples/sign-batch.ts');
  const { values } = parseArgs({ args: s.command ?? [], options: CLIENT_OPTIONS, strict: true });
  const api = new URL(values.api!);
  const peer = invocations.find((i) => i.args.spec.name === 'start' && i.service === api.hostname);
  assert.ok(peer, `${name}: --api ${values.api} is no peer service`);
  assert.ok(new URL(values.api!).port === String(configOf(peer).values.get('api')).split(':').at(-1), `${name}: --api port`);
  const cert = invocations.find((i) => i.args.spec.name === 'tls issue' && i.args.str('usage') === 'server' && i.args.list('dns').includes(api.hostname));
  assert.ok(cert, `${name}: no server certificate names ${api.hostname}`);
  assert.ok(invocations.some((i) => i.args.spec.name === 'tls issue' && i.args.str('usage') === 'client' && i.args.str('name') === values.client), `${name}: no client certificate for ${values.client}`);
  for (const p of invocations.filter((i) => i.args.spec.name === 'start')) {
    const policy = mapper(p.service, compose.services[p.service]!)(posix.join(p.args.str('home')!, 'policy.json'));
    assert.ok(policy && existsSync(policy), `${p.service}: policy.json is not mounted into its home`);
    assert.ok(loadPolicyFile(policy).clients.some((c) => c.name === values.client), `${p.service}: ${policy} does not allow client ${values.client}`);
  }
  const deps = s.depends_on as Record<string, { condition: string }>;
  for (const d of [api.hostname, new URL(values.l1!).hostname]) assert.equal(deps[d]?.condition, 'service_healthy', `${name} waits for ${d}`);
});

test('Prometheus scrapes every peer\'s metrics port', () => {
  const [name, s] = services.find(([, x]) => x.image?.startsWith('prom/prometheus'))!;
  const bind = (s.volumes ?? []).map((v) => (v as string).split(':')).find(([, dst]) => dst === '/etc/prometheus/prometheus.yml');
  assert.ok(bind, `${name}: mounts deploy/prometheus.yml`);
  const prom = parse(readFileSync(repo(bind[0]!), 'utf8')) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
  const targets = prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((sc) => sc.targets));
  const peers = invocations.filter((i) => i.args.spec.name === 'start');
  for (const p of peers) {
    const metrics = p.args.str('metrics');
    assert.ok(metrics, `${p.service}: no --metrics`);
    assert.ok(targets.includes(`${p.service}:${metrics.split(':').at(-1)}`), `${p.service}:${metrics.split(':').at(-1)} is not scraped`);
  }
  assert.equal(targets.length, peers.length, 'nothing else is scraped');
});

test('a local L1 from this package (Hardhat 2) with a healthcheck', () => {
  const l1 = services.find(([, s]) => s.build?.target === 'l1');
  assert.ok(l1, 'a service built from the Dockerfile\'s l1 stage');
  assert.ok(l1[1].healthcheck, 'the L1 has a healthcheck');
  const st = stage('l1')!;
  assert.ok(st.entrypoint?.some((e) => e.includes('hardhat')), 'the l1 stage runs hardhat');
  assert.ok(st.copies.some((c) => c.from === 'src/devnet/hardhat.config.cjs'), 'with the devnet\'s hardhat config');
});

test('the Dockerfile: node:20-bookworm-slim, npm ci --omit=dev with build tools, non-root, a home volume, potluck as entrypoint', () => {
  const peer = stages.at(-1)!;
  assert.equal(peer.name, 'peer', 'the default (last) stage is the peer');
  for (const s of stages) assert.ok(s.base === 'node:20-bookworm-slim' || stage(s.base), `stage ${s.name}: base ${s.base}`);
  const deps = stages.find((s) => s.run.some((r) => r.includes('npm ci --omit=dev')));
  assert.ok(deps && deps.run.some((r) => /python3/.test(r) && /g\+\+/.test(r) && /make/.test(r)), 'npm ci --omit=dev with python3, make, g++ (better-sqlite3)');
  assert.deepEqual(peer.entrypoint, POTLUCK_ENTRY);
  assert.ok(peer.user && !/^(root|0)(:|$)/.test(peer.user), 'runs as a non-root user');
  assert.ok(peer.volumes.includes('/var/lib/potluck'), 'the peer home is a volume');
  const pkg = JSON.parse(readFileSync(repo('package.json'), 'utf8')) as { dependencies: Obj };
  assert.ok('tsx' in pkg.dependencies, 'tsx is a runtime dependency (bin/potluck.mjs registers it)');
  const ignored = readFileSync(repo('.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const s of stages) {
    for (const c of s.copies.filter((x) => !x.stage)) {
      assert.ok(existsSync(repo(c.from)), `COPY ${c.from}: not in the repo`);
      assert.ok(!ignored.some((i) => c.from === i || c.from.startsWith(`${i}/`)), `COPY ${c.from} is excluded by .dockerignore`);
    }
  }
  assert.ok(ignored.includes('node_modules') && ignored.includes('deploy/secrets'), '.dockerignore keeps node_modules and the dev secrets out');
});

test('every JSON file under deploy/ is a valid config file (potluck.json) or policy file (policy.json)', () => {
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
  const files = walk(repo('deploy')).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 6);
  for (const f of files) {
    if (f.endsWith('/potluck.json')) loadConfigFile(f);
    else if (f.endsWith('/policy.json')) loadPolicyFile(f);
    else assert.fail(`${f}: neither potluck.json (a config file) nor policy.json`);
  }
});
