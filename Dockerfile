# syntax=docker/dockerfile:1
# The Potluck peer image (default target "peer") and the devnet's L1 (target "l1", Hardhat 2).
#   docker build -t potluck .            docker build --target l1 -t potluck-l1 .
ARG NODE_IMAGE=node:20-bookworm-slim

# Runtime dependencies. better-sqlite3 compiles from source when no prebuilt binary is reachable.
FROM ${NODE_IMAGE} AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

# Hardhat 2 is a devDependency: the L1 image installs everything.
FROM deps AS l1-deps
RUN npm ci && npm cache clean --force

FROM ${NODE_IMAGE} AS l1
WORKDIR /app
COPY --from=l1-deps /app/node_modules ./node_modules
COPY package.json ./
COPY src/devnet/hardhat.config.cjs ./hardhat.config.cjs
COPY deploy/healthcheck.mjs ./deploy/healthcheck.mjs
ENV HARDHAT_DISABLE_TELEMETRY_PROMPT=true
RUN chown node:node /app
USER node
EXPOSE 8545
ENTRYPOINT ["node", "node_modules/.bin/hardhat", "--config", "hardhat.config.cjs"]
CMD ["node", "--hostname", "0.0.0.0", "--port", "8545"]

# The peer: TypeScript run through tsx (a runtime dependency), no build step.
FROM ${NODE_IMAGE} AS peer
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY deploy ./deploy
COPY examples ./examples
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/potluck --shell /usr/sbin/nologin potluck \
 && mkdir -p /var/lib/potluck /consortium \
 && chown potluck:potluck /var/lib/potluck /consortium \
 && chmod 700 /var/lib/potluck
USER potluck
# The peer's home: identity, cluster.json, sealed shares, potluck.db, audit.log, tls/.
VOLUME ["/var/lib/potluck"]
# libp2p, the op-signer API (mTLS), metrics
EXPOSE 7400 8645 9100
ENTRYPOINT ["node", "bin/potluck.mjs"]
CMD ["--help"]
