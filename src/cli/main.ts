import { CliError } from './errors.ts';
import { simCommand } from './sim-command.ts';
import { devnetCommand } from './devnet-command.ts';
import { policyCommand } from './policy-command.ts';
import { auditCommand } from './audit-command.ts';
import { initCommand } from './init-command.ts';
import { clusterCommand } from './cluster-command.ts';
import { ceremonyCommand, keygenCommand, signCommand, startCommand, statusCommand } from './peer-commands.ts';
import { IdentityError } from '../cluster/identity.ts';
import { ClusterError } from '../cluster/definition.ts';

const USAGE = `usage: potluck <command> [options]

commands:
  init --home DIR --org NAME [--listen MULTIADDR] [--api HOST:PORT]
      create this peer's Ed25519 identity (DIR/identity.key, mode 0600) and print its peer id
  cluster create --name NAME --threshold T --quorum-orgs Q [--quorum-other O] --member peer.json ... --out FILE
  cluster sign --home DIR --definition FILE
  cluster verify --definition FILE
      write the cluster definition, sign its hash with this peer's identity, check every member signed
  keygen --home DIR --key NAME [--passphrase-file F] [--timeout SECONDS] [--json]
      run the DKG with every member (all operators run it at about the same time); the share is
      sealed under POTLUCK_PASSPHRASE (or the file) in DIR/keys/NAME.share
  start --home DIR [--passphrase-file F] [--pool-target N] [--sign-timeout SECONDS] [--tls-dir D] [--metrics HOST:PORT]
        [--checkpoint-interval SECONDS]
      run the peer daemon; admin socket DIR/potluck.sock; the op-signer compatible API (JSON-RPC over
      mTLS) on peer.json's api address when D (default DIR/tls) holds ca.crt, server.crt, server.key;
      DIR/policy.json is this org's policy (without it the peer refuses to sign anything)
  status --home DIR [--json]
      peers connected, keys, presignature pools, burned pairs, sessions
  sign --home DIR --digest 0x… [--key NAME]
      ask the local daemon to co-sign a 32-byte digest with a quorum of other orgs
  refresh --home DIR [--key NAME] [--timeout SECONDS]
      new shares for the same key and holders (same address); every holder runs it; the old share
      is deleted only after every holder acknowledged its new one
  reshare --home DIR [--key NAME] [--threshold T] [--remove ORG ...] [--timeout SECONDS]
      move the key to a new threshold and/or without some orgs (same address)
  devnet [--home DIR] [--once]
      local L1 (Hardhat 2) + 5 org peers + local CA, 3-of-5 keygen, one calldata batch signed through
      the API and mined; writes DIR/devnet.json (default DIR .devnet); serves until Ctrl-C, or exits
      after the demo with --once (0 on success); every run starts from scratch
  policy check --file F | policy export --home DIR --out F | policy import --home DIR --in F
      validate a policy file; export or import the anti-equivocation records (EIP-3076 style)
  audit verify --cluster FILE LOG... [--checkpoint NOTE]... [--json]
  audit export --session ID --out FILE LOG... | audit verify-bundle --cluster FILE BUNDLE
      offline: check the peers' signed audit logs (DIR/audit.log): structure, DKG transcripts,
      every signature's quorum, verdicts (replayed), partials and ECDSA, agreement across logs
  sim --t T --n N [--count K] [--json] [--workers]
      run a t-of-n DKG and K signatures over random digests, all parties in this process;
      --json prints one JSON object per line, --workers runs the DKG parties in worker threads`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'sim':
      await simCommand(rest);
      return 0;
    case 'devnet':
      await devnetCommand(rest);
      return 0;
    case 'policy':
      policyCommand(rest);
      return 0;
    case 'audit':
      auditCommand(rest);
      return 0;
    case 'init':
      await initCommand(rest);
      return 0;
    case 'cluster':
      await clusterCommand(rest);
      return 0;
    case 'keygen':
      await keygenCommand(rest);
      return 0;
    case 'start':
      await startCommand(rest);
      return 0;
    case 'status':
      await statusCommand(rest);
      return 0;
    case 'sign':
      await signCommand(rest);
      return 0;
    case 'refresh':
    case 'reshare':
      await ceremonyCommand(cmd, rest);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      throw new CliError(`unknown command "${cmd}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof CliError || e instanceof IdentityError || e instanceof ClusterError || (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
      console.error(`potluck: ${(e as Error).message}`);
      process.exit(e instanceof CliError ? e.exitCode : 2);
    }
    console.error(`potluck: ${(e as Error).name}: ${(e as Error).message}`);
    process.exit(1);
  },
);
