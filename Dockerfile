# tidewire from source. Pinned base image; dependencies from the lock file.
FROM node:20.19.5-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
EXPOSE 8080
ENTRYPOINT ["node", "bin/tidewire.mjs"]
CMD ["start", "--config", "/config/tidewire.yaml"]
