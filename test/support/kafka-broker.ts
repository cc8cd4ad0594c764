// A real Kafka broker for tests, in order of preference:
//   1. KAFKA_BROKERS (comma-separated host:port): someone else's broker; we only connect.
//   2. A reachable Docker engine: the apache/kafka image through testcontainers.
//   3. Neither (the usual case on our machines): the broker's jars from Maven Central,
//      cached once, and a single combined KRaft node run as a plain `java` process.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';

export interface KafkaBroker {
  brokers: string[];
  /** Final: stops the broker and deletes its data. A no-op with external brokers. */
  stop(): Promise<void>;
  /** Graceful stop, then start again on the same port with the same data dir. */
  restart(): Promise<void>;
  /** SIGKILL, for failure tests; follow with start(). */
  kill(): Promise<void>;
  /** Starts it again after kill(), on the same port with the same data dir. */
  start(): Promise<void>;
}

export interface StartKafkaOptions {
  log?: (msg: string) => void;
}

/** Must match kafka.version in test/support/kafka/pom.xml: the jar cache is keyed by it. */
export const KAFKA_VERSION = '4.1.2';

const POM = fileURLToPath(new URL('./kafka/pom.xml', import.meta.url));
// Written last, after Maven succeeded, so a half-copied libs/ from an interrupted run
// is never mistaken for a complete one.
const MARKER = '.tidewire-complete';
const READY_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 20_000;
const MAVEN_TIMEOUT_MS = 10 * 60_000;

export async function startKafka(opts: StartKafkaOptions = {}): Promise<KafkaBroker> {
  const log = opts.log ?? (() => {});
  const external = process.env.KAFKA_BROKERS?.trim();
  if (external) return externalBroker(external);
  if (await dockerReachable()) {
    log('Docker engine found: starting apache/kafka with testcontainers');
    return startContainerBroker(log);
  }
  return startLocalBroker(log);
}

// ---------------------------------------------------------------------------
// External brokers

function externalBroker(list: string): KafkaBroker {
  const brokers = list.split(',').map((b) => b.trim()).filter(Boolean);
  const unavailable = (what: string) => async () => {
    throw new Error(
      `${what}() is not available with external brokers (KAFKA_BROKERS=${list}): ` +
        'unset KAFKA_BROKERS to let the harness run its own broker, or skip this test.',
    );
  };
  return {
    brokers,
    stop: async () => {},
    restart: unavailable('restart'),
    kill: unavailable('kill'),
    start: unavailable('start'),
  };
}

// ---------------------------------------------------------------------------
// Docker (testcontainers). Cannot be exercised on our Docker-less machines, so it is
// kept to the minimum; the local-process path below is the one CI runs.

async function dockerReachable(): Promise<boolean> {
  const res = await run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 5_000 });
  return res.code === 0 && res.stdout.trim() !== '';
}

async function startContainerBroker(log: (msg: string) => void): Promise<KafkaBroker> {
  const { GenericContainer, Wait } = await import('testcontainers');
  // A fixed host port, because the broker must advertise the address clients dial,
  // and it has to be known before the container starts (and kept across restarts).
  const port = await freePort();
  const container = await new GenericContainer(`apache/kafka:${KAFKA_VERSION}`)
    .withExposedPorts({ container: 9092, host: port })
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: 'PLAINTEXT://:9092,CONTROLLER://:9093',
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://localhost:${port}`,
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'true',
      KAFKA_NUM_PARTITIONS: '1',
      KAFKA_HEAP_OPTS: '-Xmx512m -Xms256m',
    })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .withStartupTimeout(READY_TIMEOUT_MS)
    .start();
  const brokers = [`${container.getHost()}:${port}`];
  const ready = () => waitUntilReady(brokers, async () => '(see `docker logs ' + container.getId() + '`)');
  await ready();
  log(`Kafka ${KAFKA_VERSION} container ready on ${brokers[0]}`);
  const docker = async (...args: string[]) => {
    const res = await run('docker', args, { timeoutMs: 60_000 });
    if (res.code !== 0) throw new Error(`docker ${args.join(' ')} failed: ${res.stdout}${res.stderr}`);
  };
  return {
    brokers,
    stop: async () => {
      await container.stop();
    },
    restart: async () => {
      await container.restart();
      await ready();
    },
    kill: async () => docker('kill', container.getId()),
    start: async () => {
      await docker('start', container.getId());
      await ready();
    },
  };
}

// ---------------------------------------------------------------------------
// Local JVM process

export function kafkaCacheDir(): string {
  const root =
    process.env.TIDEWIRE_KAFKA_CACHE ||
    join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'tidewire');
  return join(root, `kafka-${KAFKA_VERSION}`);
}

export function kafkaLibsDir(): string {
  return join(kafkaCacheDir(), 'libs');
}

export function kafkaJarsCached(): boolean {
  return existsSync(join(kafkaLibsDir(), MARKER));
}

/**
 * Makes sure Kafka's jars are in the cache, fetching them with Maven if needed.
 * Safe to run from several processes at once (node --test runs files in parallel):
 * each downloads into its own staging folder and the first rename wins.
 */
export async function ensureKafkaJars(log: (msg: string) => void = () => {}): Promise<string> {
  const libs = kafkaLibsDir();
  if (kafkaJarsCached()) return libs;

  const cache = kafkaCacheDir();
  await mkdir(cache, { recursive: true });
  await removeStaleStaging(cache);
  const staging = await mkdtemp(join(cache, 'libs.partial-'));
  log(`Fetching Kafka ${KAFKA_VERSION} jars with Maven into ${libs} (first run only)...`);
  const started = Date.now();
  try {
    const res = await run(
      'mvn',
      ['-B', '-q', '-f', POM, 'dependency:copy-dependencies', `-DoutputDirectory=${staging}`],
      { timeoutMs: MAVEN_TIMEOUT_MS },
    );
    if (res.code === 'ENOENT') {
      throw new Error(
        'Maven (mvn) is needed to fetch the Kafka jars for the test broker and is not on PATH: ' +
          'install it (apt-get install maven), or point KAFKA_BROKERS at a running broker.',
      );
    }
    const jars = (await readdir(staging)).filter((f) => f.endsWith('.jar'));
    if (res.code !== 0 || !jars.some((f) => f.startsWith(`kafka_2.13-${KAFKA_VERSION}`))) {
      throw new Error(
        "Maven could not fetch Kafka's jars: check that Maven Central is reachable and that " +
          `${POM} still resolves (or set KAFKA_BROKERS). ` +
          `mvn exit: ${res.code}; output:\n${tail(stripAnsi(res.stdout + res.stderr), 40)}`,
      );
    }
    await writeFile(join(staging, MARKER), `kafka ${KAFKA_VERSION}\n${jars.sort().join('\n')}\n`);
    if (!kafkaJarsCached()) {
      // A libs/ without the marker is what an interrupted download leaves: replace it.
      await rm(libs, { recursive: true, force: true });
      try {
        await rename(staging, libs);
      } catch (err) {
        if (!kafkaJarsCached()) throw err;
      }
    }
    log(`Kafka jars ready (${jars.length} jars, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return libs;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Staging folders of downloads whose process died (a killed test run) before cleaning up. */
async function removeStaleStaging(cache: string): Promise<void> {
  for (const name of await readdir(cache).catch(() => [] as string[])) {
    if (!name.startsWith('libs.partial-')) continue;
    const path = join(cache, name);
    const age = Date.now() - (await stat(path).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
    if (age > MAVEN_TIMEOUT_MS * 2) await rm(path, { recursive: true, force: true });
  }
}

/** Every broker JVM still alive, killed if this process exits without stopping them. */
const liveJvms = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackJvm(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of liveJvms) c.kill('SIGKILL');
    });
  }
  liveJvms.add(child);
  child.once('exit', () => liveJvms.delete(child));
}

async function startLocalBroker(log: (msg: string) => void): Promise<KafkaBroker> {
  const java = process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
  await checkJava(java);
  const libs = await ensureKafkaJars(log);
  const classpath = join(libs, '*');

  const dir = await mkdtemp(join(tmpdir(), 'tidewire-kafka-'));
  const dataDir = join(dir, 'data');
  const configPath = join(dir, 'server.properties');
  const log4jPath = join(dir, 'log4j2.properties');
  const brokerLog = join(dir, 'broker.log'); // log4j output
  const jvmLog = join(dir, 'jvm.log'); // the JVM's own stdout/stderr: crashes, OOMs
  const [port, controllerPort] = await freePorts(2);
  const brokers = [`127.0.0.1:${port}`];

  await writeFile(
    configPath,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      `log.dirs=${dataDir}`,
      'offsets.topic.replication.factor=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'auto.create.topics.enable=true',
      'num.partitions=1',
      // The defaults (3 network, 8 I/O threads) are sized for servers; we have 2 cores
      // shared with Postgres, Node and the tests themselves.
      'num.network.threads=2',
      'num.io.threads=2',
      'num.recovery.threads.per.data.dir=1',
      'background.threads=2',
      // After kill(), the restarted broker cannot register until the controller has
      // timed out its previous incarnation: 9 s by default, on every failure test.
      'broker.session.timeout.ms=4000',
      'broker.heartbeat.interval.ms=1000',
      '',
    ].join('\n'),
  );
  await writeFile(
    log4jPath,
    [
      'status = warn',
      'appender.file.type = File',
      'appender.file.name = file',
      `appender.file.fileName = ${brokerLog}`,
      'appender.file.layout.type = PatternLayout',
      'appender.file.layout.pattern = [%d] %p %m (%c)%n',
      'rootLogger.level = INFO',
      'rootLogger.appenderRef.file.ref = file',
      // Per-request and per-segment chatter that buries what matters when a test fails.
      'logger.request.name = kafka.request.logger',
      'logger.request.level = WARN',
      'logger.cleaner.name = kafka.log.LogCleaner',
      'logger.cleaner.level = WARN',
      '',
    ].join('\n'),
  );

  const jvmArgs = [
    '-Xms128m',
    '-Xmx512m',
    '-XX:+UseSerialGC',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${log4jPath}`,
    `-Dkafka.logs.dir=${dir}`,
    '-cp',
    classpath,
  ];

  const logTail = async () => {
    const parts: string[] = [];
    for (const [name, file] of [['broker.log', brokerLog], ['jvm.log', jvmLog]] as const) {
      const text = await readFile(file, 'utf8').catch(() => '');
      if (text.trim()) parts.push(`--- ${name} (last lines) ---\n${tail(text, 30)}`);
    }
    return parts.join('\n') || `(no output in ${dir})`;
  };

  // Formatting is once per data dir: restarts must find the same cluster id and metadata.
  const format = await run(
    java,
    [
      // Short-lived: the C2 compiler would only cost startup time.
      '-XX:TieredStopAtLevel=1',
      ...jvmArgs,
      'kafka.tools.StorageTool',
      'format',
      '--cluster-id',
      kafkaUuid(),
      '--config',
      configPath,
      '--standalone',
    ],
    { timeoutMs: 120_000 },
  );
  if (format.code !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(
      `Formatting the Kafka storage (kafka.tools.StorageTool format) failed with ${format.code}: ` +
        `is ${libs} complete? Delete ${kafkaCacheDir()} to fetch the jars again. Output:\n` +
        tail(format.stdout + format.stderr, 30),
    );
  }

  let child: ChildProcess | undefined;
  let watchdog: ChildProcess | undefined;
  let stopped = false;

  const startJvm = async () => {
    if (stopped) throw new Error('This Kafka broker was stopped for good; call startKafka() for a new one.');
    if (child) return;
    const out = await open(jvmLog, 'a');
    const started = Date.now();
    const proc = spawn(java, [...jvmArgs, 'kafka.Kafka', configPath], {
      stdio: ['ignore', out.fd, out.fd],
    });
    await out.close();
    child = proc;
    trackJvm(proc);
    proc.once('exit', () => {
      if (child === proc) child = undefined;
    });
    watchdog = startWatchdog(proc.pid, dir);
    try {
      await waitUntilReady(brokers, logTail, proc);
    } catch (err) {
      await terminate('SIGKILL');
      throw err;
    }
    log(`Kafka ${KAFKA_VERSION} ready on ${brokers[0]} in ${((Date.now() - started) / 1000).toFixed(1)} s (logs: ${dir})`);
  };

  const terminate = async (signal: 'SIGTERM' | 'SIGKILL') => {
    const proc = child;
    if (watchdog) {
      watchdog.kill('SIGKILL');
      watchdog = undefined;
    }
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) {
      child = undefined;
      return;
    }
    const exited = once(proc, 'exit');
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
    child = undefined;
  };

  await startJvm();

  return {
    brokers,
    start: startJvm,
    kill: () => terminate('SIGKILL'),
    restart: async () => {
      await terminate('SIGTERM');
      await startJvm();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await terminate('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The 'exit' hook does not run when the test process is itself SIGKILLed (a runner
 * timeout, a CI job cancelled), which would leave a JVM holding 512 MB and two ports.
 * This shell outlives such a death only long enough to see its stdin close, then
 * kills the broker (the cmdline check avoids hitting a recycled pid) and removes its
 * temp dir.
 */
function startWatchdog(pid: number | undefined, dir: string): ChildProcess | undefined {
  if (pid === undefined) return undefined;
  const script = [
    'read _',
    'if grep -q kafka.Kafka "/proc/$1/cmdline" 2>/dev/null; then kill -9 "$1"; fi',
    'n=0; while kill -0 "$1" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done',
    'rm -rf "$2"',
  ].join('\n');
  const dog = spawn('sh', ['-c', script, 'kafka-watchdog', String(pid), dir], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  dog.on('error', () => {});
  dog.stdin?.on('error', () => {});
  // Neither must keep the event loop (and so the test process) alive.
  dog.unref();
  (dog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return dog;
}

async function checkJava(java: string): Promise<void> {
  const res = await run(java, ['-version'], { timeoutMs: 30_000 });
  if (res.code === 'ENOENT') {
    throw new Error(
      `Java was not found (${java}): the test Kafka broker needs Java 17+ ` +
        '(apt-get install openjdk-17-jre-headless, or set JAVA_HOME), or set KAFKA_BROKERS.',
    );
  }
  const m = /version "(\d+)/.exec(res.stderr + res.stdout);
  if (m && Number(m[1]) < 17) {
    throw new Error(`Kafka ${KAFKA_VERSION} needs Java 17+, but ${java} is Java ${m[1]}: set JAVA_HOME to a newer JDK.`);
  }
}

// ---------------------------------------------------------------------------
// Shared helpers

async function waitUntilReady(
  brokers: string[],
  logTail: () => Promise<string>,
  proc?: ChildProcess,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const kafka = new Kafka({
    clientId: 'tidewire-test-harness',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2_000,
    requestTimeout: 5_000,
    retry: { retries: 0 },
  });
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (proc && (proc.exitCode !== null || proc.signalCode !== null)) {
      throw new Error(
        `The Kafka broker exited during startup (code ${proc.exitCode}, signal ${proc.signalCode}).\n` +
          (await logTail()),
      );
    }
    const admin = kafka.admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      await admin.listTopics();
      // The controller id is only set once the broker has joined the KRaft quorum.
      if (cluster.brokers.length > 0 && cluster.controller !== null) return;
    } catch (err) {
      lastError = err;
    } finally {
      await admin.disconnect().catch(() => {});
    }
    await sleep(500);
  }
  throw new Error(
    `Kafka at ${brokers.join(',')} did not answer within ${READY_TIMEOUT_MS / 1000} s ` +
      `(last error: ${lastError instanceof Error ? lastError.message : String(lastError)}).\n` +
      (await logTail()),
  );
}

interface RunResult {
  code: number | 'ENOENT' | 'TIMEOUT' | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], { timeoutMs }: { timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { killed?: boolean; code?: unknown }) | null;
      let code: RunResult['code'] = 0;
      if (e) {
        if (e.code === 'ENOENT') code = 'ENOENT';
        else if (e.killed) code = 'TIMEOUT';
        else code = typeof e.code === 'number' ? e.code : null;
      }
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/** Held open together so the same port cannot be handed out twice. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, async () => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1');
      await once(srv, 'listening');
      return srv;
    }),
  );
  const ports = servers.map((s) => {
    const addr = s.address();
    if (addr === null || typeof addr === 'string') throw new Error('could not get a free port');
    return addr.port;
  });
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** Kafka's Uuid text form: 16 random bytes, base64url, never starting with '-'. */
function kafkaUuid(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
