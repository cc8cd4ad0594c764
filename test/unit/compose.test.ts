/**
 * docker-compose.yml and the Dockerfile, checked without a Docker engine: the Compose file is valid
 * per the Compose specification's JSON schema (shipped by the dclint package, which also lints it),
 * every image is pinned to an exact version, tidewire's configuration file exists and parses as it
 * would in the container, and the ports users open are published. Both layouts are checked: the
 * default all-in-one node, and the scale-out profile (one ingest node, two edges; issue #15).
 * test/integration/compose-examples.test.ts runs the scale-out config files on a real Postgres and Kafka.
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
import { type Config, loadConfigFile } from '../../services/config/config.ts';
import { withDefaultStateDir } from '../../services/cli/start.ts';

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
  profiles?: string[];
  healthcheck?: { test: string[] };
};
// merge: the edges share one definition (`<<: *edge`), as Compose and dclint read it.
const compose = YAML.parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true }) as { services: Record<string, Service>; volumes?: Record<string, unknown> };

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

function dependencies(s: Service): Record<string, string> {
  if (Array.isArray(s.depends_on)) return Object.fromEntries(s.depends_on.map((d) => [d, 'service_started']));
  return Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([d, { condition }]) => [d, condition]));
}

/** The services `docker compose [--profile P] up` starts: those of no profile, and those of P. */
function layout(profile: string | null): string[] {
  return Object.entries(compose.services).filter(([, s]) => !s.profiles || (profile !== null && s.profiles.includes(profile))).map(([name]) => name);
}

/** `docker compose up A B` starts A, B and what they depend on, transitively. */
function started(targets: string[]): Set<string> {
  const out = new Set<string>();
  const visit = (name: string) => {
    if (out.has(name)) return;
    out.add(name);
    Object.keys(dependencies(compose.services[name])).forEach(visit);
  };
  targets.forEach(visit);
  return out;
}

/** Where the image reads its configuration: the Dockerfile's CMD `--config` path. */
function imageConfigPath(): string {
  const cmd = /^CMD \[(.*)\]$/m.exec(readFileSync(DOCKERFILE, 'utf8'));
  assert.ok(cmd, 'the Dockerfile has a CMD');
  const args = JSON.parse(`[${cmd[1]}]`) as string[];
  return args[args.indexOf('--config') + 1];
}

/** Every tidewire node of the file (built from this repository), with its config as `start --config` reads it in the container. */
function tidewireNodes(): Map<string, { file: string; config: Config }> {
  const nodes = new Map<string, { file: string; config: Config }>();
  for (const [name, s] of Object.entries(compose.services).filter(([, s]) => s.build)) {
    const mount = mounts(s).find((m) => m.target === imageConfigPath());
    assert.ok(mount, `${name}: the config file is mounted at ${imageConfigPath()}, where the image's CMD reads it`);
    const file = resolve(ROOT, mount.source);
    assert.ok(existsSync(file), file);
    try {
      nodes.set(name, { file, config: withDefaultStateDir(loadConfigFile(file, environment(s))) });
    } catch (err) {
      throw new Error(`${name}: ${file} does not load: ${(err as Error).message}`, { cause: err });
    }
  }
  return nodes;
}

/** The scale-out command as README.md's "Scaling out (preview)" section gives it. */
function readmeScaleOutCommand(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Scaling out (preview)'), readme.indexOf('\n## ', readme.indexOf('## Scaling out (preview)') + 1));
  const command = /`(docker compose --profile scaleout up[^`]*)`/.exec(section);
  assert.ok(command, 'README.md, "Scaling out (preview)", gives the compose command');
  return command[1];
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
  const env = environment(tw);
  const { config } = tidewireNodes().get('tidewire')!;
  assert.equal(config.server.host, '0.0.0.0', 'listens on every interface inside the container');
  assert.equal(config.postgres?.url, env.TIDEWIRE_DATABASE_URL);
  assert.match(config.postgres!.url, /@postgres:5432\/shop$/);
  assert.deepEqual(config.kafka?.brokers, ['kafka:9092']);
  // The topic the config maps is the one kafka-init creates.
  const init = compose.services['kafka-init'];
  const initArgs = Array.isArray(init.entrypoint) ? init.entrypoint : [];
  assert.equal(initArgs[initArgs.indexOf('--topic') + 1], config.kafka!.topics[0].topic);
  // The dependencies wait for a healthy Postgres and the created topic.
  assert.deepEqual(dependencies(tw), { postgres: 'service_healthy', 'kafka-init': 'service_completed_successfully', 'tidewire-state-owner': 'service_completed_successfully' });

  const ports = published(tw);
  assert.ok(ports.some((p) => p.container === config.server.port && p.host === 8080), 'the dashboard and WebSocket port is published');
});

test('ports are published on loopback, none twice: the dashboards, Postgres and Kafka for the host', () => {
  const all = Object.entries(compose.services).flatMap(([name, s]) => published(s).map((p) => ({ name, ...p })));
  const wanted = [
    { name: 'tidewire', container: 8080 }, { name: 'postgres', container: 5432 }, { name: 'kafka', container: 9094 },
    { name: 'ingest', container: 8080 }, { name: 'edge-1', container: 8080 }, { name: 'edge-2', container: 8080 },
  ];
  for (const want of wanted) {
    assert.ok(all.some((p) => p.name === want.name && p.container === want.container), `${want.name} publishes ${want.container}`);
  }
  for (const p of all) assert.equal(p.hostIp, '127.0.0.1', `${p.name}:${p.host}`);
  // Across profiles too: `--profile scaleout up` may run beside the all-in-one node.
  const owners = new Map<number, string>();
  for (const p of all) {
    assert.ok(!owners.has(p.host), `host port ${p.host} is published by ${owners.get(p.host)} and ${p.name}`);
    owners.set(p.host, p.name);
  }
});

test('two layouts: `docker compose up` is the all-in-one node, the scaleout profile adds one ingest node and two edges', () => {
  const allInOne = ['kafka', 'kafka-init', 'postgres', 'tidewire', 'tidewire-state-owner'];
  assert.deepEqual(layout(null).sort(), allInOne);
  assert.deepEqual(layout('scaleout').sort(), [...allInOne, 'edge-1', 'edge-2', 'ingest', 'ingest-state-owner'].sort());
  // Compose refuses a service that depends on one its layout does not start.
  for (const profile of [null, 'scaleout']) {
    const services = new Set(layout(profile));
    for (const name of services) {
      for (const dep of Object.keys(dependencies(compose.services[name]))) assert.ok(services.has(dep), `${name} (profile ${profile}) depends on ${dep}, which that layout does not start`);
    }
  }
  // The documented command names the scale-out nodes, so the all-in-one node stays out of it.
  const command = readmeScaleOutCommand();
  assert.match(readFileSync(COMPOSE_FILE, 'utf8'), new RegExp(`^#\\s+${command.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), 'the compose file gives the same command');
  const targets = command.split(/\s+/).slice(command.split(/\s+/).indexOf('up') + 1).filter((a) => !a.startsWith('-'));
  assert.deepEqual([...started(targets)].sort(), ['edge-1', 'edge-2', 'ingest', 'ingest-state-owner', 'kafka', 'kafka-init', 'postgres']);
});

test('every tidewire node has the role its name says; the ingest node and the edges share one hand-off topic on the compose Kafka', () => {
  const nodes = tidewireNodes();
  assert.deepEqual(Object.fromEntries([...nodes].map(([name, { config }]) => [name, config.role ?? 'all'])), { tidewire: 'all', ingest: 'ingest', 'edge-1': 'edge', 'edge-2': 'edge' });
  const ingest = nodes.get('ingest')!.config;
  assert.deepEqual(ingest.handoff?.kafka?.brokers, ['kafka:9092']);
  const advertised = environment(compose.services.kafka).KAFKA_ADVERTISED_LISTENERS.split(',');
  assert.ok(advertised.includes('PLAINTEXT://kafka:9092'), `the kafka service advertises the hand-off brokers to containers: ${advertised.join(', ')}`);
  for (const edge of ['edge-1', 'edge-2']) {
    const { config } = nodes.get(edge)!;
    assert.deepEqual(config.handoff, ingest.handoff, `${edge} reads the hand-off topic the ingest node writes`);
    assert.equal(config.server.host, '0.0.0.0');
    assert.ok(published(compose.services[edge]).some((p) => p.container === config.server.port), `${edge} publishes its server port`);
  }
});

test('the ingest node maps the all-in-one tables and topic under a slot, publication and group of its own', () => {
  const nodes = tidewireNodes();
  const all = nodes.get('tidewire')!.config;
  const ingest = nodes.get('ingest')!.config;
  assert.deepEqual(ingest.postgres?.tables, all.postgres?.tables);
  assert.deepEqual(ingest.kafka?.topics, all.kafka?.topics);
  assert.equal(ingest.postgres?.url, environment(compose.services.ingest).TIDEWIRE_DATABASE_URL);
  assert.deepEqual(ingest.kafka?.brokers, ['kafka:9092']);
  // Both may run at once (`--profile scaleout up`): one slot cannot feed two nodes, and one consumer group would split the partitions.
  assert.notEqual(ingest.postgres!.slot, all.postgres!.slot);
  assert.notEqual(ingest.postgres!.publication, all.postgres!.publication);
  assert.notEqual(ingest.kafka!.groupId, all.kafka!.groupId);

});

test('the all-in-one and the ingest node keep durable state, each on a named volume of its own that node owns', () => {
  const nodes = tidewireNodes();
  const volumes = new Map<string, string>();
  for (const name of ['tidewire', 'ingest']) {
    const { config } = nodes.get(name)!;
    const service = compose.services[name];
    // In the container /app (where `start --config` would put it by default) is root's, and a restart in memory starts a new epoch (which stops every edge).
    const stateDir = config.state?.dir;
    assert.ok(stateDir && config.state?.memory !== true && stateDir.startsWith('/'), `${name} keeps its state on disk, at an absolute path: ${stateDir}`);
    const volume = mounts(service).find((m) => stateDir === m.target || stateDir.startsWith(`${m.target}/`));
    assert.ok(volume, `${name}: state.dir ${stateDir} is on a mount of the service`);
    assert.ok(compose.volumes && Object.hasOwn(compose.volumes, volume.source), `${name}: ${volume.source} is a named volume`);
    assert.ok(!volumes.has(volume.source), `${name} and ${volumes.get(volume.source)} share the volume ${volume.source}: one process per state dir`);
    volumes.set(volume.source, name);
    // A new volume is root's; the image runs as node: a one-shot service hands the volume over first.
    const owner = compose.services[`${name}-state-owner`];
    assert.deepEqual(owner.entrypoint, ['chown', 'node:node', volume.target]);
    assert.deepEqual(mounts(owner), [volume]);
    assert.deepEqual(owner.profiles, service.profiles, `${name}-state-owner is in ${name}'s layout`);
    assert.equal(dependencies(service)[`${name}-state-owner`], 'service_completed_successfully');
  }
});

test('the edges keep state in memory and start once Kafka is healthy and the ingest node ready', () => {
  const nodes = tidewireNodes();
  for (const edge of ['edge-1', 'edge-2']) {
    const { config } = nodes.get(edge)!;
    assert.equal(config.state?.memory, true);
    assert.equal(config.state?.dir, undefined, 'start --config gives an edge no state dir');
    assert.deepEqual(dependencies(compose.services[edge]), { kafka: 'service_healthy', ingest: 'service_healthy' });
  }
  assert.deepEqual(dependencies(compose.services.ingest), {
    postgres: 'service_healthy',
    'kafka-init': 'service_completed_successfully',
    'ingest-state-owner': 'service_completed_successfully',
  });
  // service_healthy needs a health check, and a node's is its /ready.
  for (const [name, s] of Object.entries(compose.services)) {
    for (const [dep, condition] of Object.entries(dependencies(s))) {
      if (condition === 'service_healthy') assert.ok(compose.services[dep].healthcheck, `${name} waits for ${dep} to be healthy: ${dep} has a health check`);
    }
  }
  for (const name of nodes.keys()) assert.match(compose.services[name].healthcheck!.test.join(' '), /127\.0\.0\.1:8080\/ready/, `${name} is healthy when ready`);
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
