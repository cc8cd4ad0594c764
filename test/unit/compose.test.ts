/**
 * docker-compose.yml and the Dockerfile, checked without a Docker engine: the Compose file is valid
 * per the Compose specification's JSON schema (shipped by the dclint package, which also lints it),
 * every image is pinned to an exact version, tidewire's configuration file exists and parses as it
 * would in the container, and the ports users open are published.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import AjvModule from 'ajv';
import { DCLinter } from 'dclint';
import YAML from 'yaml';
import { loadConfigFile } from '../../services/config/config.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const DOCKERFILE = join(ROOT, 'Dockerfile');

type Service = {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number> | string[];
  volumes?: Array<string | { source: string; target: string }>;
  ports?: Array<string | { target: number; published?: string | number; host_ip?: string }>;
  depends_on?: Record<string, { condition: string }> | string[];
};
const compose = YAML.parse(readFileSync(COMPOSE_FILE, 'utf8')) as { services: Record<string, Service> };

// The Compose specification's schema as dclint ships it (package.json "exports" hides the file, so it is found beside
// package.json). Its $schema URL lacks draft-07's trailing '#', which ajv does not know: the schema itself is not re-validated.
const SCHEMA_FILE = join(dirname(createRequire(import.meta.url).resolve('dclint/package.json')), 'schemas/compose.schema.json');
const Ajv = (AjvModule as unknown as { default: typeof AjvModule }).default ?? AjvModule;
const validateCompose = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true, logger: false, validateSchema: false }).compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')));

/** dclint's correctness and security rules; its ordering and quoting style rules are off. */
const LINT_RULES = {
  'no-build-and-image': 2,
  'no-duplicate-container-names': 2,
  'no-duplicate-exported-ports': 2,
  'no-unbound-port-interfaces': 2,
  'no-version-field': 2,
  'service-image-require-explicit-tag': 2,
  'require-project-name-field': 2,
  'no-quotes-in-volumes': 0,
  'require-quotes-in-ports': 0,
  'service-container-name-regex': 2,
  'service-dependencies-alphabetical-order': 0,
  'service-keys-order': 0,
  'service-ports-alphabetical-order': 0,
  'services-alphabetical-order': 0,
  'top-level-properties-order': 0,
} as const;

function lint(file: string) {
  const linter = new DCLinter({ rules: LINT_RULES, quiet: true, debug: false, exclude: [] } as ConstructorParameters<typeof DCLinter>[0]);
  return linter.lintFiles([file], false)[0].messages.filter((m) => m.type === 'error');
}

function environment(s: Service): Record<string, string> {
  if (Array.isArray(s.environment)) return Object.fromEntries(s.environment.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  return Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
}

function published(s: Service): Array<{ hostIp: string | undefined; host: number; container: number }> {
  return (s.ports ?? []).map((p) => {
    if (typeof p !== 'string') return { hostIp: p.host_ip, host: Number(p.published), container: p.target };
    const parts = p.split(':');
    const container = Number(parts.pop());
    const host = Number(parts.pop());
    return { hostIp: parts.pop(), host, container };
  });
}

function mounts(s: Service): Array<{ source: string; target: string }> {
  return (s.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return v;
    const [source, target] = v.split(':');
    return { source, target };
  });
}

test('docker-compose.yml is valid per the Compose specification', () => {
  const valid = validateCompose(compose);
  assert.ok(valid, JSON.stringify(validateCompose.errors, null, 2));
  assert.deepEqual(lint(COMPOSE_FILE), []);
});

test('the validation can fail: a broken file is reported', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidewire-compose-'));
  const broken = join(dir, 'docker-compose.yml');
  writeFileSync(broken, 'name: x\nservices:\n  db:\n    image: postgres:latest\n    ports: ["5432:5432"]\n    restart: sometimes-maybe\n    healthcheck: { tests: ["CMD"] }\n');
  assert.equal(validateCompose(YAML.parse(readFileSync(broken, 'utf8'))), false);
  assert.ok(lint(broken).some((m) => m.rule === 'invalid-schema'));
  writeFileSync(broken, 'name: x\nservices:\n  db:\n    image: postgres:latest\n    ports: ["5432:5432"]\n');
  const rules = lint(broken).map((m) => m.rule);
  assert.ok(rules.includes('service-image-require-explicit-tag') && rules.includes('no-unbound-port-interfaces'), rules.join(', '));
});

test('every image is pinned to an exact version', () => {
  const images = Object.entries(compose.services).filter(([, s]) => s.image !== undefined);
  assert.ok(images.length >= 3);
  for (const [name, s] of images) {
    // repository:MAJOR.MINOR[.PATCH][-variant], or a digest; never latest or a bare major.
    assert.match(s.image!, /^[\w./-]+(:\d+\.\d+(\.\d+)?(-[\w.-]+)?|@sha256:[0-9a-f]{64})$/, `${name}: ${s.image}`);
  }
  const from = readFileSync(DOCKERFILE, 'utf8').split('\n').filter((l) => /^FROM\s/i.test(l));
  assert.ok(from.length >= 2);
  for (const line of from) assert.match(line, /^FROM [\w./-]+:\d+\.\d+\.\d+(-[\w.-]+)?( AS \w+)?$/i, line);
});

test('Postgres runs with logical replication and the example schema', () => {
  const pg = compose.services.postgres;
  const command = Array.isArray(pg.command) ? pg.command.join(' ') : String(pg.command);
  assert.match(command, /wal_level=logical/);
  const init = mounts(pg).find((m) => m.target.startsWith('/docker-entrypoint-initdb.d/'));
  assert.ok(init && existsSync(resolve(ROOT, init.source)), 'the init script is mounted and exists');
  assert.match(readFileSync(resolve(ROOT, init.source), 'utf8'), /CREATE TABLE orders/);
});

test("tidewire's configuration exists, passes parseConfig with the compose environment, and maps what the compose file provides", () => {
  const tw = compose.services.tidewire;
  assert.ok(tw.build, 'tidewire is built from this repository');
  const cmd = /^CMD \[(.*)\]$/m.exec(readFileSync(DOCKERFILE, 'utf8'));
  assert.ok(cmd, 'the Dockerfile has a CMD');
  const args = JSON.parse(`[${cmd[1]}]`) as string[];
  const configPath = args[args.indexOf('--config') + 1];
  const mount = mounts(tw).find((m) => m.target === configPath);
  assert.ok(mount, `the config file is mounted at ${configPath}, where the image's CMD reads it`);
  const file = resolve(ROOT, mount.source);
  assert.ok(existsSync(file), file);

  const env = environment(tw);
  const config = loadConfigFile(file, env);
  assert.equal(config.server.host, '0.0.0.0', 'listens on every interface inside the container');
  assert.equal(config.postgres?.url, env.TIDEWIRE_DATABASE_URL);
  assert.match(config.postgres!.url, /@postgres:5432\/shop$/);
  assert.deepEqual(config.kafka?.brokers, ['kafka:9092']);
  // The topic the config maps is the one kafka-init creates.
  const init = compose.services['kafka-init'];
  const initArgs = Array.isArray(init.entrypoint) ? init.entrypoint : [];
  assert.equal(initArgs[initArgs.indexOf('--topic') + 1], config.kafka!.topics[0].topic);
  // The dependencies wait for a healthy Postgres and the created topic.
  assert.deepEqual(tw.depends_on, { postgres: { condition: 'service_healthy' }, 'kafka-init': { condition: 'service_completed_successfully' } });

  const ports = published(tw);
  assert.ok(ports.some((p) => p.container === config.server.port && p.host === 8080), 'the dashboard and WebSocket port is published');
});

test('ports are published on loopback: the dashboard, Postgres and Kafka for the host', () => {
  const all = Object.entries(compose.services).flatMap(([name, s]) => published(s).map((p) => ({ name, ...p })));
  for (const want of [{ name: 'tidewire', container: 8080 }, { name: 'postgres', container: 5432 }, { name: 'kafka', container: 9094 }]) {
    assert.ok(all.some((p) => p.name === want.name && p.container === want.container), `${want.name} publishes ${want.container}`);
  }
  for (const p of all) assert.equal(p.hostIp, '127.0.0.1', `${p.name}:${p.host}`);
});

test('the Dockerfile builds the dashboard in a builder stage and ships only dashboard/dist', () => {
  const text = readFileSync(DOCKERFILE, 'utf8');
  const stages = text.split(/^FROM /m).slice(1);
  assert.equal(stages.length, 2);
  const [build, runtime] = stages;
  assert.match(build, /AS build/i);
  assert.match(build, /RUN npm ci\b/);
  assert.match(build, /RUN npm run build:dashboard/);
  assert.match(runtime, /RUN npm ci --omit=dev/);
  assert.match(runtime, /COPY --from=build \/app\/dashboard\/dist \.\/dashboard\/dist/);
  assert.doesNotMatch(runtime, /^COPY \. /m, 'the runtime stage copies what it runs, not the whole tree');
  assert.doesNotMatch(runtime, /build:dashboard|vite/, 'no build tooling in the runtime stage');
  assert.match(runtime, /^USER node$/m);
  const script = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts['build:dashboard'];
  assert.ok(script, 'package.json has the build:dashboard script the builder runs');
});
