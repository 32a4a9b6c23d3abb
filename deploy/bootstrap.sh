#!/bin/sh
# The compose consortium's one-shot setup (docker-compose.yml, service "init"): each org's identity,
# the cluster definition signed by every org, a dev CA with a server certificate per peer and the
# batcher's client certificate. In a real consortium every org runs its own lines on its own host.
# Runs as root to write the fresh volumes, then hands them to the potluck user (uid 10001).
# Does nothing once /consortium/cluster.json exists; a failed run: "docker compose down -v", retry.
set -eu
potluck() { node /app/bin/potluck.mjs "$@"; }

if [ -f /consortium/cluster.json ]; then
  echo "bootstrap: done already (/consortium/cluster.json exists)"
  exit 0
fi
trap 'echo "bootstrap failed: start over with \"docker compose down -v\"" >&2' EXIT

potluck init --config /etc/potluck/acme/potluck.json --home /homes/acme
potluck init --config /etc/potluck/bravo/potluck.json --home /homes/bravo
potluck init --config /etc/potluck/coral/potluck.json --home /homes/coral

potluck cluster create --name consortium --threshold 2 --quorum-orgs 2 --quorum-other 1 \
  --member /homes/acme/peer.json --member /homes/bravo/peer.json --member /homes/coral/peer.json \
  --out /consortium/cluster.pending.json
potluck cluster sign --home /homes/acme --definition /consortium/cluster.pending.json
potluck cluster sign --home /homes/bravo --definition /consortium/cluster.pending.json
potluck cluster sign --home /homes/coral --definition /consortium/cluster.pending.json
potluck cluster verify --definition /consortium/cluster.pending.json

potluck policy check --file /etc/potluck/acme/policy.json
potluck policy check --file /etc/potluck/bravo/policy.json
potluck policy check --file /etc/potluck/coral/policy.json

potluck tls ca --out /consortium/ca --name "Potluck consortium dev CA"
potluck tls issue --ca /consortium/ca --usage server --name acme --dns acme --dns localhost --ip 127.0.0.1 --out /homes/acme/tls
potluck tls issue --ca /consortium/ca --usage server --name bravo --dns bravo --dns localhost --ip 127.0.0.1 --out /homes/bravo/tls
potluck tls issue --ca /consortium/ca --usage server --name coral --dns coral --dns localhost --ip 127.0.0.1 --out /homes/coral/tls
potluck tls issue --ca /consortium/ca --usage client --name batcher --out /consortium/client

for org in acme bravo coral; do cp /consortium/cluster.pending.json "/homes/$org/cluster.json"; done
mkdir -p /consortium/keys
chown -R 10001:10001 /homes/acme /homes/bravo /homes/coral /consortium
chmod 700 /homes/acme /homes/bravo /homes/coral
mv /consortium/cluster.pending.json /consortium/cluster.json
trap - EXIT
echo "bootstrap: identities, signed cluster definition and certificates are ready"
