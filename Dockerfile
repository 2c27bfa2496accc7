# syntax=docker/dockerfile:1
#
# Tether as a container image: one instance per container, configured from the
# environment (see .env.example). docker-compose.yml runs three of them behind
# HAProxy with Redis.
#
#   docker build -t tether .
#   docker run --rm -p 3000:3000 -e REDIS_URL=redis://… tether

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: all dependencies, then turbo builds shared, server and client
# (client/dist and the demo page's browser bundle, client/demo/tether.js).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV TURBO_TELEMETRY_DISABLED=1
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY server/package.json server/
COPY client/package.json client/
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.base.json turbo.json ./
COPY scripts/build-cjs.mjs scripts/
COPY shared/ shared/
COPY server/ server/
COPY client/ client/
RUN node node_modules/turbo/bin/turbo run build --output-logs=errors-only

# ---- runtime: production dependencies and the built output, nothing else.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY server/package.json server/
COPY client/package.json client/
# The workspaces link themselves into node_modules/@tether/* (no install
# scripts are needed at run time).
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY --from=build /app/shared/dist shared/dist
COPY --from=build /app/server/dist server/dist
COPY --from=build /app/client/dist client/dist
COPY --from=build /app/client/demo client/demo
# Files stay root-owned and read-only to the process; Tether writes nothing to disk.
USER node
EXPOSE 3000
# Liveness only (the process answers). Readiness (/readyz: Redis reachable, not
# draining) is what the load balancer checks. No curl in the image: Node's fetch.
# On the health port when there is one (TETHER_HEALTH_PORT: answered off the event
# loop, so a busy instance is not called unhealthy; still failing when the loop stops).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.TETHER_HEALTH_PORT||process.env.PORT||3000)+'/healthz',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself (a graceful drain);
# no shell, no npm in between to swallow the signal.
STOPSIGNAL SIGTERM
CMD ["node", "server/dist/main.js"]
