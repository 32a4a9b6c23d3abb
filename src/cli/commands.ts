/**
 * Every potluck command in one table: summary, flags, examples and the handler (loaded lazily, so
 * `--help` and the deployment test load nothing heavy). `config.ts` derives the parseArgs options
 * and the value resolution from it, `help.ts` the help text. To add a command or a flag, add it here.
 */
import type { Args } from './config.ts';

/**
 * `path`: a string resolved against the config file's directory when it comes from one.
 * `seconds`: a non-negative number. `int`: a whole number (optionally within min..max).
 */
export type FlagType = 'string' | 'path' | 'boolean' | 'int' | 'seconds';

export interface FlagSpec {
  /** Without the dashes: `pool-target`. Config key; env var POTLUCK_POOL_TARGET unless `env` says otherwise. */
  name: string;
  type: FlagType;
  description: string;
  /** Placeholder in usage lines (DIR, FILE, N); a default follows from the type. */
  value?: string;
  multiple?: boolean;
  required?: boolean;
  /** Appended to "--x is required (…)". */
  hint?: string;
  default?: string | number | boolean;
  /** The env var; null: none. Default `POTLUCK_<NAME>` (upper snake case). */
  env?: string | null;
  /** false: never taken from a config file. */
  config?: boolean;
  min?: number;
  max?: number;
  choices?: readonly string[];
}

export interface CommandSpec {
  /** `keygen`, or `cluster create` for a subcommand. */
  name: string;
  summary: string;
  /** More text for `--help`, paragraphs separated by blank lines. */
  details?: string;
  /** Positional arguments in usage, e.g. `LOG...`; absent: none allowed. */
  args?: string;
  flags: FlagSpec[];
  examples: string[];
  /** Flags that belong to another command, and the message that sends the operator there. */
  misplaced?: Record<string, string>;
  run(a: Args): Promise<void> | void;
}

/** Command groups (`potluck cluster …`): their one-line summary. */
export const GROUPS: Record<string, string> = {
  cluster: 'the cluster definition: create it, sign it, check every member signed',
  policy: "this org's policy file and its anti-equivocation records",
  audit: 'offline checks of the peers\' signed audit logs',
  tls: 'a local CA, certificates and their revocation list for the signing API (dev, test, small deployments)',
};

// Flags shared by several commands: one definition, so a name has one type everywhere.
const home = (description = "this peer's home directory (identity, cluster.json, keys/, policy.json, potluck.db)"): FlagSpec => ({ name: 'home', type: 'path', value: 'DIR', required: true, description });
const json = (description = 'print the result as one JSON object (the default output is JSON already)'): FlagSpec => ({ name: 'json', type: 'boolean', default: false, description });
const PASSPHRASE_FILE: FlagSpec = { name: 'passphrase-file', type: 'path', value: 'FILE', description: 'read the share passphrase from FILE (first line); without it, POTLUCK_PASSPHRASE' };
const KEY: FlagSpec = { name: 'key', type: 'string', value: 'NAME', description: 'the key to use (default: the only key)' };
const timeout = (dflt: number, what: string): FlagSpec => ({ name: 'timeout', type: 'seconds', default: dflt, description: `give up ${what} after this many seconds` });
const ADDRESS_FILTER: FlagSpec = { name: 'cluster', type: 'string', value: 'ADDRESS', description: "only this key's records (its 0x address)" };
const out = (description: string, value = 'FILE'): FlagSpec => ({ name: 'out', type: 'path', value, required: true, description });

/** Every command accepts these (and -h/--help). */
export const CONFIG_FLAG: FlagSpec = { name: 'config', type: 'path', value: 'FILE', config: false, description: 'read settings from FILE: JSON whose keys are flag names (see "potluck --help")' };

const TABLE: CommandSpec[] = [
  {
    name: 'init',
    summary: "create this peer's identity (Ed25519, DIR/identity.key) and print its peer.json",
    details: 'Refuses to overwrite an existing identity. Hand DIR/peer.json to whoever writes the cluster definition.',
    flags: [
      home(),
      { name: 'org', type: 'string', value: 'NAME', required: true, description: 'your organization\'s name in the cluster (letters, digits, ".", "_", "-")' },
      { name: 'listen', type: 'string', value: 'MULTIADDR', default: '/ip4/127.0.0.1/tcp/7400', description: 'libp2p address the peer listens on and the others dial' },
      { name: 'api', type: 'string', value: 'HOST:PORT', default: '127.0.0.1:8645', description: 'address of the op-signer API (mTLS) that "potluck start" serves' },
      json(),
    ],
    examples: [
      'potluck init --home ./acme --org acme --listen /ip4/10.0.0.5/tcp/7400 --api 0.0.0.0:8645',
    ],
    run: async (a) => (await import('./init-command.ts')).initCommand(a),
  },
  {
    name: 'cluster create',
    summary: 'write a cluster definition from every member\'s peer.json',
    details: 'Every member then signs it ("potluck cluster sign") and copies the signed file to DIR/cluster.json.',
    flags: [
      { name: 'name', type: 'string', value: 'NAME', required: true, description: 'the cluster\'s name' },
      { name: 'threshold', type: 'int', value: 'T', required: true, min: 1, description: 'signers needed per signature (t of n)' },
      { name: 'quorum-orgs', type: 'int', value: 'Q', required: true, description: 'distinct orgs every signer set must span' },
      { name: 'quorum-other', type: 'int', value: 'O', default: 1, description: 'orgs other than the requester\'s in every signer set' },
      { name: 'member', type: 'path', value: 'FILE', multiple: true, required: true, description: 'a member\'s peer.json (repeat for every member)' },
      { name: 'faulty', type: 'int', value: 'F', min: 0, description: 'members assumed faulty at most (f; needs n ≥ 3f+1; default ⌊(n−1)/3⌋): approval certificates need ⌈(n+f+1)/2⌉ members' },
      { name: 'requesters', type: 'string', value: 'KEY=ORG,…', multiple: true, description: 'the orgs that may originate signing requests for key KEY (repeat per key; default: every org)' },
      out('where to write the definition'),
      json(),
    ],
    examples: [
      'potluck cluster create --name seq1 --threshold 2 --quorum-orgs 2 --member acme/peer.json --member bravo/peer.json --member coral/peer.json --out cluster.json',
      'potluck cluster create --name seq1 --threshold 2 --quorum-orgs 2 --faulty 1 --requesters batcher=acme --member acme/peer.json … --member delta/peer.json --out cluster.json',
    ],
    run: async (a) => (await import('./cluster-command.ts')).clusterCreate(a),
  },
  {
    name: 'cluster sign',
    summary: 'sign the definition\'s hash with this peer\'s identity (in place)',
    flags: [home(), { name: 'definition', type: 'path', value: 'FILE', required: true, description: 'the cluster definition to sign' }, json()],
    examples: ['potluck cluster sign --home ./acme --definition cluster.json'],
    run: async (a) => (await import('./cluster-command.ts')).clusterSign(a),
  },
  {
    name: 'cluster verify',
    summary: 'check that every member signed the definition (exit 1 names who has not)',
    flags: [{ name: 'definition', type: 'path', value: 'FILE', required: true, description: 'the cluster definition to check' }, json()],
    examples: ['potluck cluster verify --definition cluster.json && cp cluster.json ./acme/cluster.json'],
    run: async (a) => (await import('./cluster-command.ts')).clusterVerify(a),
  },
  {
    name: 'keygen',
    summary: 'run the distributed key generation with every member; seal this org\'s share in DIR/keys/NAME.share',
    details: 'Every operator runs it at about the same time; progress per round and peer goes to stderr, and a timeout names the peers still missing. '
      + 'The share is sealed under POTLUCK_PASSPHRASE (or --passphrase-file). Stop "potluck start" on this home first.',
    flags: [
      home(),
      { ...KEY, required: true, hint: 'a name for the new key, e.g. batcher', description: 'name of the new key (a-z, 0-9, "_", "-")' },
      PASSPHRASE_FILE,
      timeout(300, 'the ceremony'),
      { name: 'exist-ok', type: 'boolean', default: false, description: 'if this peer already holds the key, print it and exit 0 (provisioning that runs on every start)' },
      { name: 'out', type: 'path', value: 'FILE', description: 'also write the result (JSON) to FILE' },
      json('print the full result (parties, threshold) instead of the summary'),
    ],
    examples: [
      'POTLUCK_PASSPHRASE=… potluck keygen --home ./acme --key batcher',
      'potluck keygen --config /etc/potluck/potluck.json --exist-ok --out /shared/acme-key.json',
    ],
    run: async (a) => (await import('./peer-commands.ts')).keygenCommand(a),
  },
  {
    name: 'start',
    summary: 'run the peer daemon: co-signing, presignature pool, the op-signer API over mTLS, metrics',
    details: 'Admin socket DIR/potluck.sock. The API listens on peer.json\'s api address when the TLS directory holds ca.crt, server.crt and server.key '
      + '(and ca.crl, the revocation list of client certificates, when present); '
      + 'DIR/policy.json is this org\'s policy (without it the peer signs nothing). SIGHUP reloads the policy and the TLS files; a bad file keeps the previous one. '
      + 'SIGTERM or SIGINT stops it gracefully; past --shutdown-timeout it logs what is still open and exits 1. Prints one JSON line once started.',
    flags: [
      home(),
      PASSPHRASE_FILE,
      { name: 'pool-target', type: 'int', value: 'N', default: 2, description: 'presignatures to keep ready per likely signer set' },
      { name: 'sign-timeout', type: 'seconds', default: 5, description: 'deadline of one signing attempt before another signer set is tried' },
      { name: 'tls-dir', type: 'path', value: 'DIR', description: 'the API\'s ca.crt, server.crt, server.key (default DIR/tls)' },
      { name: 'api-crl', type: 'path', value: 'FILE', description: 'the CRL of client certificates (default: the TLS directory\'s ca.crl when present); reloaded on SIGHUP' },
      { name: 'api-max-connections', type: 'int', value: 'N', default: 512, min: 1, max: 65535, description: 'open API connections at most; more are dropped at accept' },
      { name: 'api-max-client-calls', type: 'int', value: 'N', default: 256, min: 1, max: 100000, description: 'signing calls one client may have in flight; more get -32000 (peer busy)' },
      { name: 'shutdown-timeout', type: 'seconds', default: 10, description: 'how long a graceful stop may take before the peer exits 1, naming what was still open' },
      { name: 'metrics', type: 'string', value: 'HOST:PORT', description: 'serve Prometheus metrics on http://HOST:PORT/metrics' },
      { name: 'checkpoint-interval', type: 'seconds', default: 30, description: 'how often the audit log\'s checkpoint is sent to the other peers to cosign' },
      { name: 'refresh-every', type: 'seconds', default: 0, description: 'proactive refresh of every key at each multiple of this period since the Unix epoch (every holder must use the same value); 0: only by command' },
      { name: 'l1-rpc', type: 'string', value: 'URL', description: 'an L1 JSON-RPC endpoint: approve nonce k only within [confirmed, confirmed + nonceWindow] (without it: up to the highest approved nonce + nonceWindow)' },
    ],
    examples: [
      'potluck start --home ./acme --pool-target 2 --metrics 127.0.0.1:9100',
      'POTLUCK_CONFIG=/etc/potluck/potluck.json potluck start',
    ],
    run: async (a) => (await import('./peer-commands.ts')).startCommand(a),
  },
  {
    name: 'status',
    summary: 'ask the running daemon: peers connected, keys, presignature pools, burned pairs, sessions',
    flags: [home(), json('print the daemon\'s status as JSON instead of text')],
    examples: ['potluck status --home ./acme', 'potluck status --home ./acme --json | jq .peers'],
    run: async (a) => (await import('./peer-commands.ts')).statusCommand(a),
  },
  {
    name: 'sign',
    summary: 'co-sign a 32-byte digest with a quorum of other orgs through the running daemon',
    details: 'Needs "rawDigests": true in this org\'s and the co-signers\' policy files (tests and devnets).',
    flags: [
      home(),
      { name: 'digest', type: 'string', value: '0x…', required: true, hint: '0x + 64 hex digits', description: 'the 32-byte digest to sign' },
      KEY,
      json(),
    ],
    examples: ['potluck sign --home ./acme --key batcher --digest 0x5c0b…'],
    run: async (a) => (await import('./peer-commands.ts')).signCommand(a),
  },
  {
    name: 'refresh',
    summary: 'every holder: new shares for the same key (same address); the old share is deleted once all acknowledged',
    flags: [home(), KEY, timeout(300, 'waiting for the other holders'), json()],
    examples: ['potluck refresh --home ./acme --key batcher   # every holder, at about the same time'],
    misplaced: Object.fromEntries(['threshold', 'remove', 'add', 'address'].map((f) => [f, 'refresh keeps the holders and the threshold; use "potluck reshare --threshold T --remove ORG --add ORG" to change them'])),
    run: async (a) => (await import('./peer-commands.ts')).ceremonyCommand('refresh', a),
  },
  {
    name: 'reshare',
    summary: 'every remaining holder and every added org: move the key to a new threshold, without some orgs or with new ones (same address)',
    details: 'An org joins the definition first (cluster create/sign with every old holder still in it, restart the daemons). Old shares are deleted only after every new holder acknowledged its new one.',
    flags: [
      home(), KEY,
      { name: 'threshold', type: 'int', value: 'T', min: 1, description: 'the new threshold' },
      { name: 'remove', type: 'string', value: 'ORG', multiple: true, description: 'drop this org (repeat for several)' },
      { name: 'add', type: 'string', value: 'ORG', multiple: true, description: 'give this org a new share: a new member, or one that lost its share (repeat for several); it runs the same command' },
      { name: 'address', type: 'string', value: '0x…', description: 'an org being added checks that the key it joins has this address' },
      timeout(300, 'waiting for the other holders'),
      json(),
    ],
    examples: [
      'potluck reshare --home ./acme --remove echo',
      'potluck reshare --home ./acme --threshold 3 --add fox   # and at fox: potluck reshare --home ./fox --key batcher --threshold 3 --add fox --address 0x…',
      'potluck reshare --home ./acme --add coral   # coral lost its share; coral runs the same with --threshold',
    ],
    run: async (a) => (await import('./peer-commands.ts')).ceremonyCommand('reshare', a),
  },
  {
    name: 'backup',
    summary: 'write an encrypted backup of this peer: identity, definition, policy, sealed shares, TLS files, nonce records (never presignatures)',
    details: 'Safe while the daemon runs. Sealed under --backup-passphrase-file, else POTLUCK_BACKUP_PASSPHRASE, else the share passphrase; every share must open with the share passphrase. '
      + 'The audit log is not in it: ship DIR/audit.log to your auditors as it grows.',
    flags: [home(), PASSPHRASE_FILE, { name: 'backup-passphrase-file', type: 'path', value: 'FILE', description: 'seal the backup under the passphrase in FILE' }, out('the backup file (never overwritten)'), json()],
    examples: ['potluck backup --home ./acme --out /mnt/offsite/acme-2026-11-25.potluck-backup'],
    run: async (a) => void (await import('./backup-command.ts')).backupCommand(a),
  },
  {
    name: 'restore',
    summary: 'restore a backup into an empty home; then "potluck start" rejoins as the same peer',
    details: 'Refuses a home that holds an identity, keys or a database. If a refresh or reshare ran since the backup, the restored share is stale: the others recover it with "potluck reshare --add ORG".',
    flags: [
      home('the new, empty home directory'), PASSPHRASE_FILE, { name: 'backup-passphrase-file', type: 'path', value: 'FILE', description: 'the backup\'s passphrase, if not the share passphrase' },
      { name: 'in', type: 'path', value: 'FILE', required: true, hint: 'a file written by potluck backup', description: 'the backup file' }, json(),
    ],
    examples: ['potluck restore --home ./acme --in /mnt/offsite/acme-2026-11-25.potluck-backup'],
    run: async (a) => void (await import('./backup-command.ts')).restoreCommand(a),
  },
  {
    name: 'devnet',
    summary: 'local L1 (Hardhat 2), 5 org peers, local CA, 3-of-5 keygen, one batch signed through the API and mined',
    details: 'Writes DIR/devnet.json. Serves until Ctrl-C, or exits after the demo with --once (0 on success). Every run starts from scratch: DIR is deleted first, '
      + 'which is why its home is never taken from POTLUCK_HOME or a config file.',
    flags: [
      { name: 'home', type: 'path', value: 'DIR', default: '.devnet', env: 'POTLUCK_DEVNET_HOME', config: false, description: 'the devnet\'s directory (deleted and recreated)' },
      { name: 'once', type: 'boolean', default: false, description: 'stop after the demo batch' },
      json(),
    ],
    examples: ['npm start', 'potluck devnet --once'],
    run: async (a) => (await import('./devnet-command.ts')).devnetCommand(a),
  },
  {
    name: 'policy check',
    summary: 'validate an org policy file and print what it allows',
    flags: [{ name: 'file', type: 'path', value: 'FILE', required: true, hint: 'the org policy, e.g. DIR/policy.json', description: 'the policy file (docs/policy.md)' }, json()],
    examples: ['potluck policy check --file ./acme/policy.json'],
    run: async (a) => (await import('./policy-command.ts')).policyCheckCommand(a),
  },
  {
    name: 'policy export',
    summary: 'export the anti-equivocation records (EIP-3076 style interchange)',
    flags: [home(), out('where to write the records'), ADDRESS_FILTER, json()],
    examples: ['potluck policy export --home ./acme --out nonces.json'],
    run: async (a) => (await import('./policy-command.ts')).policyExportCommand(a),
  },
  {
    name: 'policy import',
    summary: 'import anti-equivocation records (safe while the daemon runs; all or nothing)',
    flags: [home(), { name: 'in', type: 'path', value: 'FILE', required: true, description: 'the interchange file to import' }, ADDRESS_FILTER, json()],
    examples: ['potluck policy import --home ./acme-rebuilt --in nonces.json'],
    run: async (a) => (await import('./policy-command.ts')).policyImportCommand(a),
  },
  {
    name: 'policy release',
    summary: 'free a nonce slot in the running daemon\'s records (logged in its audit log)',
    details: 'Without --force the L1 must show the nonce consumed (its confirmed nonce is past it): that frees a slot nobody can use any more. '
      + 'With --force --reason any slot is freed, e.g. one claimed by a junk request that will never be posted; other orgs keep their own records.',
    flags: [
      home(),
      { name: 'chain-id', type: 'int', value: 'ID', required: true, min: 1, description: 'the slot\'s chain id' },
      { name: 'from', type: 'string', value: 'ADDRESS', required: true, description: 'the slot\'s sender (the cluster address)' },
      { name: 'nonce', type: 'int', value: 'N', required: true, min: 0, description: 'the slot\'s nonce' },
      { name: 'l1-rpc', type: 'string', value: 'URL', description: 'the L1 to check that the nonce is consumed (default: the daemon\'s --l1-rpc)' },
      { name: 'force', type: 'boolean', default: false, description: 'free the slot even if the L1 does not show it consumed (needs --reason)' },
      { name: 'reason', type: 'string', value: 'TEXT', description: 'why, for the audit log (required with --force)' },
      json(),
    ],
    examples: [
      'potluck policy release --home ./acme --chain-id 900 --from 0x… --nonce 41 --l1-rpc http://127.0.0.1:8545',
      'potluck policy release --home ./acme --chain-id 900 --from 0x… --nonce 57 --force --reason "junk claimed by a member; incident 2026-12-07"',
    ],
    run: async (a) => (await import('./incident-commands.ts')).releaseCommand(a),
  },
  {
    name: 'audit ack-rollback',
    summary: 'acknowledge a detected rollback of this peer\'s state (after investigating) so it approves and signs again',
    details: 'A witness holds a checkpoint of this peer\'s audit log that the log no longer contains: potluck.db and audit.log were restored from an older copy. '
      + 'Presignatures from before the restart were already discarded. The acknowledgement is an incident in the audit log, and the witnesses start over from the current log.',
    flags: [home(), { name: 'reason', type: 'string', value: 'TEXT', required: true, description: 'what was investigated and found, for the audit log' }, json()],
    examples: ['potluck audit ack-rollback --home ./acme --reason "VM restored from the 06:00 snapshot after disk failure; no other copy ran"'],
    run: async (a) => (await import('./incident-commands.ts')).ackRollbackCommand(a),
  },
  {
    name: 'audit verify',
    summary: 'offline: check the peers\' signed audit logs (structure, DKG transcripts, quorum, verdicts, partials, ECDSA, agreement)',
    args: 'LOG...',
    details: 'LOG is a peer\'s DIR/audit.log. Exit 0 only if every check holds; 1 names the log, entry and rule that broke.',
    flags: [
      { name: 'cluster', type: 'path', value: 'FILE', required: true, hint: 'the signed cluster definition', description: 'the signed cluster definition' },
      { name: 'checkpoint', type: 'path', value: 'NOTE', multiple: true, description: 'also check this published checkpoint (repeat)' },
      json('print the report as JSON instead of text'),
    ],
    examples: ['potluck audit verify --cluster cluster.json acme/audit.log bravo/audit.log coral/audit.log'],
    run: async (a) => (await import('./audit-command.ts')).auditVerify(a),
  },
  {
    name: 'audit export',
    summary: 'write the bundle that proves one signature (entries and proofs from the logs)',
    args: 'LOG...',
    flags: [
      { name: 'session', type: 'string', value: 'ID', required: true, hint: 'the sigSid printed by audit verify', description: 'the signing session (32-byte hex)' },
      out('where to write the bundle'),
      json(),
    ],
    examples: ['potluck audit export --session 0x3f… --out sig.bundle acme/audit.log bravo/audit.log'],
    run: async (a) => (await import('./audit-command.ts')).auditExport(a),
  },
  {
    name: 'audit verify-bundle',
    summary: 'offline: check one signature\'s bundle',
    args: 'BUNDLE',
    flags: [
      { name: 'cluster', type: 'path', value: 'FILE', required: true, hint: 'the signed cluster definition', description: 'the signed cluster definition' },
      json('print the report as JSON instead of text'),
    ],
    examples: ['potluck audit verify-bundle --cluster cluster.json sig.bundle'],
    run: async (a) => (await import('./audit-command.ts')).auditVerifyBundle(a),
  },
  {
    name: 'tls ca',
    summary: 'create a local CA (DIR/ca.crt, DIR/ca.key) for the signing API\'s server and client certificates',
    flags: [
      out('where to write ca.crt and ca.key', 'DIR'),
      { name: 'name', type: 'string', value: 'CN', default: 'Potluck local CA', description: 'the CA\'s common name' },
      { name: 'days', type: 'int', value: 'N', default: 3650, min: 1, max: 36500, description: 'validity' },
      json(),
    ],
    examples: ['potluck tls ca --out ./ca'],
    run: async (a) => (await import('./tls-command.ts')).tlsCa(a),
  },
  {
    name: 'tls issue',
    summary: 'issue a server certificate (DIR/server.crt, .key) or a client certificate (DIR/NAME.crt, .key), plus DIR/ca.crt',
    details: 'A client is identified by its first DNS name, which must be a client in the peer\'s policy.json.',
    flags: [
      { name: 'ca', type: 'path', value: 'DIR', required: true, description: 'the CA directory (ca.crt, ca.key) from "potluck tls ca"' },
      { name: 'usage', type: 'string', value: 'server|client', required: true, choices: ['server', 'client'], description: 'what the certificate is for' },
      { name: 'name', type: 'string', value: 'NAME', required: true, description: 'common name; for a client also its first DNS name (the client name)' },
      { name: 'dns', type: 'string', value: 'NAME', multiple: true, description: 'a DNS subject alternative name (repeat)' },
      { name: 'ip', type: 'string', value: 'IP', multiple: true, description: 'an IP subject alternative name (repeat)' },
      out('where to write the certificate and key', 'DIR'),
      { name: 'days', type: 'int', value: 'N', default: 365, min: 1, max: 36500, description: 'validity' },
      json(),
    ],
    examples: [
      'potluck tls issue --ca ./ca --usage server --name acme --dns acme --dns localhost --ip 127.0.0.1 --out ./acme/tls',
      'potluck tls issue --ca ./ca --usage client --name batcher --out ./batcher-tls',
    ],
    run: async (a) => (await import('./tls-command.ts')).tlsIssue(a),
  },
  {
    name: 'tls revoke',
    summary: 'revoke client certificates: write the CA\'s revocation list DIR/ca.crl (cumulative; with no --cert or --serial it is renewed)',
    details: 'Copy the new ca.crl into every peer\'s TLS directory and send each peer SIGHUP: from then on a revoked certificate gets HTTP 401 (CERT_REVOKED). '
      + 'A CRL past its next update makes the peers refuse every client of the CA: renew it before --days run out.',
    flags: [
      { name: 'ca', type: 'path', value: 'DIR', required: true, description: 'the CA directory (ca.crt, ca.key) from "potluck tls ca"; its ca.crl is read and rewritten' },
      { name: 'cert', type: 'path', value: 'FILE', multiple: true, description: 'a certificate to revoke (PEM, issued by this CA; repeat)' },
      { name: 'serial', type: 'string', value: 'HEX', multiple: true, description: 'the serial number of a certificate to revoke (repeat)' },
      { name: 'reason', type: 'string', value: 'REASON', default: 'unspecified', choices: ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation'], description: 'the revocation reason of these entries' },
      { name: 'days', type: 'int', value: 'N', default: 90, min: 1, max: 3650, description: 'until the CRL\'s next update' },
      json(),
    ],
    examples: [
      'potluck tls revoke --ca ./ca --cert ./batcher-tls/batcher.crt --reason keyCompromise',
      'potluck tls revoke --ca ./ca   # renew the list before it expires',
    ],
    run: async (a) => (await import('./tls-command.ts')).tlsRevoke(a),
  },
  {
    name: 'sim',
    summary: 'a t-of-n DKG and K signatures over random digests, all parties in this process',
    flags: [
      { name: 't', type: 'int', value: 'T', required: true, min: 2, max: 16, description: 'threshold' },
      { name: 'n', type: 'int', value: 'N', required: true, min: 2, max: 16, description: 'parties' },
      { name: 'count', type: 'int', value: 'K', default: 1, min: 0, max: 1_000_000, description: 'signatures' },
      json('one JSON object per line: the key, then each signature'),
      { name: 'workers', type: 'boolean', default: false, description: 'run the DKG parties in worker threads' },
    ],
    examples: ['potluck sim --t 3 --n 5 --count 4 --json', 'potluck sim --t 2 --n 3 --workers'],
    run: async (a) => (await import('./sim-command.ts')).simCommand(a),
  },
];

export const COMMANDS: CommandSpec[] = TABLE.map((c) => ({ ...c, flags: [...c.flags, CONFIG_FLAG] }));

/** The command `argv` starts with (`cluster create` before `cluster`), and the rest of argv. */
export function findCommand(argv: readonly string[]): { spec: CommandSpec; rest: string[] } | undefined {
  for (const words of [2, 1]) {
    const name = argv.slice(0, words).join(' ');
    const spec = COMMANDS.find((c) => c.name === name);
    if (spec && argv.slice(0, words).every((w) => !w.startsWith('-'))) return { spec, rest: argv.slice(words) };
  }
  return undefined;
}

export function command(name: string): CommandSpec {
  const c = COMMANDS.find((x) => x.name === name);
  if (!c) throw new Error(`no command "${name}" in the table`);
  return c;
}
