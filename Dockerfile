# tidewire from source: the dashboard is built in a builder stage (with the dev dependencies Vite
# needs); the runtime stage has production dependencies, the sources and dashboard/dist only.
# Base images are pinned to exact versions. test/unit/compose.test.ts checks the stages.

FROM node:20.20.2-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build:dashboard

FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY client ./client
COPY core ./core
COPY connectors ./connectors
COPY schemas ./schemas
COPY services ./services
COPY tsconfig.json ./
COPY --from=build /app/dashboard/dist ./dashboard/dist
USER node
EXPOSE 8080
# /health: the process answers; /ready: every source streams (see docs/OPERATIONS.md).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD ["node", "-e", "fetch('http://127.0.0.1:8080/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/tidewire.mjs"]
CMD ["start", "--config", "/config/tidewire.yaml"]
