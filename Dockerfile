# syntax=docker/dockerfile:1
# The gateway, compiled to JavaScript (npm run build): type stripping at run time would load TypeScript's stripper into
# every replica (about 30 MB of RSS). Production dependencies only, a non-root user, a HEALTHCHECK on /health/ready.
# docker-compose.yml runs two replicas.
# Pinned to one release (Node 24 LTS on Debian 12): an image rebuilt later runs the same Node.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json .npmrc ./
# The lockfile, exactly; no devDependencies (tap, eslint, typescript, openai), no install scripts.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# The compiler and its types come from the lockfile too; optional packages (the agent CLIs' native binaries, which
# the tests use) are not needed to compile.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=optional --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY plugins ./plugins
COPY routes ./routes
RUN npm run build

FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="qwen-gateway" \
      org.opencontainers.image.description="Self-hosted OpenAI-compatible gateway for Qwen models" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0
WORKDIR /app
# Owned by root and read-only for the user that runs the gateway.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
USER node
EXPOSE 3000
# Healthy = ready to take traffic: /health/ready answers 200 when every upstream has a usable key, 503 otherwise (a
# Redis outage shows in its body, not its status). It answers from memory, never calling the upstream; 2 s is plenty.
# Node's fetch, because the slim image has no curl or wget.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health/ready', { signal: AbortSignal.timeout(2000) }).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node is PID 1 unless the container runs with an init (compose: init: true); the gateway handles SIGTERM itself
# and lets streams finish for SHUTDOWN_GRACE_MS.
STOPSIGNAL SIGTERM
# As npm start runs it. --max-semi-space-size=16: V8 would grow the young generation to 128 MB under load, which
# 1,000 concurrent streams took to 265 MB of RSS; at 16 MB per semi-space they peak below 200 MB, for a few percent
# more CPU on agent-size requests (bench/README.md).
CMD ["node", "--max-semi-space-size=16", "dist/src/server.js"]
