package dev.tidewire.bench;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.format.Json;

/**
 * Debezium side of the tidewire ingest benchmark: runs the Debezium embedded engine with the Postgres
 * connector (pgoutput) from an existing replication slot and counts data change events with a no-op
 * batch consumer until N have arrived.
 *
 * <p>Settings come from {@code --key=value} arguments, each with an environment fallback:
 * <pre>
 *   --host        DBZ_HOST         (127.0.0.1)
 *   --port        DBZ_PORT         (5432)
 *   --db          DBZ_DB           (postgres)
 *   --user        DBZ_USER         (postgres)
 *   --password    DBZ_PASSWORD     ("")  prefer the environment: arguments show in ps
 *   --slot        DBZ_SLOT         (required) an existing pgoutput slot
 *   --publication DBZ_PUBLICATION  (required) an existing publication
 *   --tables      DBZ_TABLES       (required) table.include.list, e.g. public.t1,public.t2
 *   --expected    DBZ_EXPECTED     (required) N data change events to wait for
 *   --timeout     DBZ_TIMEOUT      (300) seconds from process start
 *   --prop k=v    (repeatable)     any Debezium / engine property, overriding the defaults below
 * </pre>
 *
 * <p>stdout carries one JSON object per line, nothing else (logging goes to stderr):
 * <pre>
 *   {"event":"polling","uptimeMs":..}           engine started polling the connector task
 *   {"event":"started","uptimeMs":..}           first record delivered to the consumer
 *   {"event":"done","changes":N,"seconds":..,..} N-th data change event; seconds = first record .. N-th
 *   {"event":"exit","cpuSeconds":..,"peakRssBytes":..,"totalChanges":..}  right before System.exit
 *   {"event":"timeout",..} / {"event":"error",..}  followed by a non-zero exit
 * </pre>
 * Exit codes: 0 done, 2 engine failure, 3 timeout, 64 bad arguments.
 */
public final class DebeziumBench {

    private static final String HEARTBEAT_PREFIX = "__debezium-heartbeat";
    private static final String OP_KEY = "\"op\":\"";

    private DebeziumBench() {
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> opts = new LinkedHashMap<>();
        Properties overrides = new Properties();
        for (String a : args) {
            if (!a.startsWith("--") || !a.contains("=")) {
                usage("unexpected argument: " + a);
            }
            String k = a.substring(2, a.indexOf('='));
            String v = a.substring(a.indexOf('=') + 1);
            if (k.equals("prop")) {
                int eq = v.indexOf('=');
                if (eq <= 0) {
                    usage("--prop wants key=value, got: " + v);
                }
                overrides.setProperty(v.substring(0, eq), v.substring(eq + 1));
            }
            else {
                opts.put(k, v);
            }
        }
        String host = opt(opts, "host", "DBZ_HOST", "127.0.0.1");
        String port = opt(opts, "port", "DBZ_PORT", "5432");
        String db = opt(opts, "db", "DBZ_DB", "postgres");
        String user = opt(opts, "user", "DBZ_USER", "postgres");
        String password = opt(opts, "password", "DBZ_PASSWORD", "");
        String slot = required(opts, "slot", "DBZ_SLOT");
        String publication = required(opts, "publication", "DBZ_PUBLICATION");
        String tables = required(opts, "tables", "DBZ_TABLES");
        long expected = parseLong(required(opts, "expected", "DBZ_EXPECTED"), "expected");
        long timeoutSec = parseLong(opt(opts, "timeout", "DBZ_TIMEOUT", "300"), "timeout");
        if (expected <= 0) {
            usage("--expected must be > 0");
        }

        checkSlotAndPublication(host, port, db, user, password, slot, publication);

        Properties props = new Properties();
        props.setProperty("name", "tidewire-bench");
        props.setProperty("connector.class", "io.debezium.connector.postgresql.PostgresConnector");
        // No stored offset: the connector streams from the slot's confirmed_flush_lsn.
        props.setProperty("offset.storage", "org.apache.kafka.connect.storage.MemoryOffsetBackingStore");
        props.setProperty("offset.flush.interval.ms", "60000");
        props.setProperty("topic.prefix", "bench");
        props.setProperty("database.hostname", host);
        props.setProperty("database.port", port);
        props.setProperty("database.user", user);
        props.setProperty("database.password", password);
        props.setProperty("database.dbname", db);
        props.setProperty("plugin.name", "pgoutput");
        props.setProperty("slot.name", slot);
        props.setProperty("publication.name", publication);
        props.setProperty("publication.autocreate.mode", "disabled");
        props.setProperty("snapshot.mode", "no_data"); // stream only ('never' is gone in 3.x)
        props.setProperty("table.include.list", tables);
        // Throughput settings: defaults are 2048 / 8192 / 500 ms.
        props.setProperty("max.batch.size", "20480");
        props.setProperty("max.queue.size", "81920");
        // The queue hands a batch over when it is full or when this interval has passed: a short
        // interval keeps the first batch small (timed from its delivery) and the last one prompt.
        props.setProperty("poll.interval.ms", "10");
        // Parallel conversion to JSON on a fixed pool of one thread per core (default: a cached pool).
        props.setProperty("record.processing.threads", "AVAILABLE_CORES");
        // tidewire emits no tombstones: don't make Debezium produce (and us skip) one per delete.
        props.setProperty("tombstones.on.delete", "false");
        // Numbers as JSON strings rather than base64 of the unscaled bytes ("precise").
        props.setProperty("decimal.handling.mode", "string");
        // Plain JSON envelopes {before, after, source, op, ts_ms}, no schema blocks.
        props.setProperty("converter.schemas.enable", "false");
        // Latency statistics (DDSketch quantiles) are optional monitoring: off. (Debezium's measurement
        // publisher thread still receives every event; 3.6 has no switch for that, nor for the
        // per-event "last event" summary string its JMX metrics build.)
        props.setProperty("statistics.metrics.enabled", "false");
        props.setProperty("errors.max.retries", "0");
        props.putAll(overrides);

        Counter counter = new Counter(expected);
        CountDownLatch finished = new CountDownLatch(1);
        AtomicBoolean shuttingDown = new AtomicBoolean(false);
        final String[] failure = new String[1];

        DebeziumEngine<ChangeEvent<String, String>> engine = DebeziumEngine.create(Json.class)
                .using(props)
                .using(new DebeziumEngine.ConnectorCallback() {
                    @Override
                    public void pollingStarted() {
                        emit("{\"event\":\"polling\",\"uptimeMs\":" + uptimeMs() + "}");
                        counter.pollingStartedNanos = System.nanoTime();
                    }
                })
                .using((success, message, error) -> {
                    if (!success && !shuttingDown.get()) {
                        failure[0] = message + (error != null ? ": " + error : "");
                        if (error != null) {
                            error.printStackTrace();
                        }
                    }
                    finished.countDown();
                })
                .notifying(counter)
                .build();

        ExecutorService runner = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "debezium-engine");
            t.setDaemon(true);
            return t;
        });
        runner.execute(engine);

        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSec)
                - TimeUnit.MILLISECONDS.toNanos(uptimeMs());
        while (!counter.reached.await(50, TimeUnit.MILLISECONDS)) {
            if (finished.getCount() == 0) {
                String why = failure[0] != null ? failure[0] : "engine stopped before " + expected + " changes";
                emit("{\"event\":\"error\",\"changes\":" + counter.count + ",\"message\":" + jsonString(why) + "}");
                System.err.println("debezium-bench: engine failed: " + why);
                System.exit(2);
            }
            if (System.nanoTime() > deadline) {
                emit("{\"event\":\"timeout\",\"changes\":" + counter.count + ",\"expected\":" + expected
                        + ",\"timeoutSec\":" + timeoutSec + "}");
                System.err.println("debezium-bench: timed out after " + timeoutSec + " s with " + counter.count
                        + " of " + expected + " change events");
                shuttingDown.set(true);
                closeQuietly(engine, 5);
                System.exit(3);
            }
        }

        double seconds = (counter.doneNanos - counter.firstNanos) / 1e9;
        double sincePolling = counter.pollingStartedNanos > 0 ? (counter.doneNanos - counter.pollingStartedNanos) / 1e9 : -1;
        emit("{\"event\":\"done\",\"changes\":" + expected
                + ",\"seconds\":" + seconds
                + ",\"secondsSincePolling\":" + sincePolling
                + ",\"firstBatchSize\":" + counter.firstBatchSize
                + ",\"batches\":" + counter.batches
                + ",\"cpuSecondsAtDone\":" + counter.cpuAtDone
                + ",\"cpuSecondsStreaming\":" + (counter.cpuAtDone - counter.cpuAtFirst)
                + ",\"uptimeMs\":" + uptimeMs() + "}");
        // Per-thread CPU now, while the engine's threads are still alive (their CPU leaves /proc with them).
        emit("{\"event\":\"threads\",\"cpuSeconds\":" + threadCpuJson() + "}");

        shuttingDown.set(true);
        closeQuietly(engine, 30);
        runner.shutdownNow();
        emit("{\"event\":\"exit\",\"cpuSeconds\":" + processCpuSeconds()
                + ",\"peakRssBytes\":" + peakRssBytes()
                + ",\"totalChanges\":" + counter.count
                + ",\"uptimeMs\":" + uptimeMs() + "}");
        System.exit(0);
    }

    /** Counts data change events; everything else (tombstones, heartbeats, transaction markers) is skipped. */
    static final class Counter implements DebeziumEngine.ChangeConsumer<ChangeEvent<String, String>> {
        final long expected;
        final CountDownLatch reached = new CountDownLatch(1);
        volatile long count;
        volatile long pollingStartedNanos;
        long firstNanos;
        long doneNanos;
        int firstBatchSize;
        long batches;
        double cpuAtFirst;
        double cpuAtDone;

        Counter(long expected) {
            this.expected = expected;
        }

        @Override
        public void handleBatch(List<ChangeEvent<String, String>> records,
                                DebeziumEngine.RecordCommitter<ChangeEvent<String, String>> committer)
                throws InterruptedException {
            if (batches++ == 0) {
                firstNanos = System.nanoTime();
                firstBatchSize = records.size();
                cpuAtFirst = processCpuSeconds();
                emit("{\"event\":\"started\",\"uptimeMs\":" + uptimeMs() + "}");
            }
            long n = count;
            for (ChangeEvent<String, String> r : records) {
                if (isDataChange(r)) {
                    n++;
                    if (n == expected) {
                        doneNanos = System.nanoTime();
                        cpuAtDone = processCpuSeconds();
                        count = n;
                        reached.countDown();
                    }
                }
                committer.markProcessed(r);
            }
            count = n;
            committer.markBatchFinished();
        }

        static boolean isDataChange(ChangeEvent<String, String> r) {
            String v = r.value();
            if (v == null) {
                return false; // tombstone
            }
            String dest = r.destination();
            if (dest != null && dest.startsWith(HEARTBEAT_PREFIX)) {
                return false;
            }
            // The envelope ends with ..."op":"c","ts_ms":...; transaction markers have no "op".
            int i = v.lastIndexOf(OP_KEY);
            return i >= 0 && i + OP_KEY.length() < v.length() && v.charAt(i + OP_KEY.length()) != 'r';
        }
    }

    /**
     * Debezium would silently create a missing slot at the current WAL position (and then wait for
     * changes that were written before it): insist on the existing pgoutput slot and publication.
     */
    private static void checkSlotAndPublication(String host, String port, String db, String user, String password,
                                                String slot, String publication) {
        String url = "jdbc:postgresql://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port + "/" + db;
        Properties p = new Properties();
        p.setProperty("user", user);
        p.setProperty("password", password);
        try (java.sql.Connection c = java.sql.DriverManager.getConnection(url, p)) {
            try (java.sql.PreparedStatement st = c.prepareStatement(
                    "SELECT plugin, database, active, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = ?")) {
                st.setString(1, slot);
                try (java.sql.ResultSet rs = st.executeQuery()) {
                    if (!rs.next()) {
                        fail("replication slot '" + slot + "' does not exist: create it first with "
                                + "SELECT pg_create_logical_replication_slot('" + slot + "', 'pgoutput')");
                    }
                    if (!"pgoutput".equals(rs.getString(1))) {
                        fail("replication slot '" + slot + "' uses plugin " + rs.getString(1) + ", not pgoutput");
                    }
                    if (!db.equals(rs.getString(2))) {
                        fail("replication slot '" + slot + "' belongs to database " + rs.getString(2) + ", not " + db);
                    }
                    if (rs.getBoolean(3)) {
                        fail("replication slot '" + slot + "' is in use by another connection");
                    }
                    emit("{\"event\":\"slot\",\"slot\":" + jsonString(slot) + ",\"confirmedFlushLsn\":"
                            + jsonString(String.valueOf(rs.getString(4))) + "}");
                }
            }
            try (java.sql.PreparedStatement st = c.prepareStatement("SELECT 1 FROM pg_publication WHERE pubname = ?")) {
                st.setString(1, publication);
                try (java.sql.ResultSet rs = st.executeQuery()) {
                    if (!rs.next()) {
                        fail("publication '" + publication + "' does not exist (publication.autocreate.mode=disabled)");
                    }
                }
            }
        }
        catch (java.sql.SQLException e) {
            fail("cannot check the slot on " + url + " as " + user + ": " + e.getMessage());
        }
    }

    private static void fail(String message) {
        emit("{\"event\":\"error\",\"changes\":0,\"message\":" + jsonString(message) + "}");
        System.err.println("debezium-bench: " + message);
        System.exit(2);
    }

    private static void closeQuietly(DebeziumEngine<?> engine, int seconds) {
        Thread t = new Thread(() -> {
            try {
                engine.close();
            }
            catch (IOException | RuntimeException e) {
                System.err.println("debezium-bench: closing the engine failed: " + e);
            }
        }, "debezium-close");
        t.setDaemon(true);
        t.start();
        try {
            t.join(TimeUnit.SECONDS.toMillis(seconds));
        }
        catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (t.isAlive()) {
            System.err.println("debezium-bench: engine did not close within " + seconds + " s; exiting anyway");
        }
    }

    static double processCpuSeconds() {
        java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean) {
            return ((com.sun.management.OperatingSystemMXBean) os).getProcessCpuTime() / 1e9;
        }
        return -1;
    }

    /**
     * CPU seconds per native thread name (from /proc/self/task/*, so JIT compiler and GC threads are
     * included; names are cut to 15 characters by the kernel, digits folded to N), busiest first.
     */
    static String threadCpuJson() {
        Map<String, Double> byName = new java.util.TreeMap<>();
        double hz = 100.0; // USER_HZ, 100 on Linux
        try (var tasks = Files.list(Path.of("/proc/self/task"))) {
            for (Path t : (Iterable<Path>) tasks::iterator) {
                try {
                    String stat = Files.readString(t.resolve("stat"));
                    String name = stat.substring(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replaceAll("[0-9]+", "N");
                    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                    double cpu = (Long.parseLong(f[11]) + Long.parseLong(f[12])) / hz;
                    byName.merge(name, cpu, Double::sum);
                }
                catch (IOException | RuntimeException e) {
                    // thread gone meanwhile
                }
            }
        }
        catch (IOException | RuntimeException e) {
            return "{}";
        }
        StringBuilder b = new StringBuilder("{");
        byName.entrySet().stream()
                .filter(e -> e.getValue() > 0)
                .sorted((x, y) -> Double.compare(y.getValue(), x.getValue()))
                .forEach(e -> b.append(b.length() > 1 ? "," : "").append(jsonString(e.getKey())).append(':')
                        .append(Math.round(e.getValue() * 100) / 100.0));
        return b.append('}').toString();
    }

    static long peakRssBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    String[] parts = line.substring(6).trim().split("\\s+");
                    return Long.parseLong(parts[0]) * 1024L;
                }
            }
        }
        catch (IOException | RuntimeException e) {
            // not Linux: unknown
        }
        return -1;
    }

    static long uptimeMs() {
        return ManagementFactory.getRuntimeMXBean().getUptime();
    }

    static synchronized void emit(String jsonLine) {
        System.out.println(jsonLine);
        System.out.flush();
    }

    static String jsonString(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    }
                    else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"').toString();
    }

    private static String opt(Map<String, String> opts, String key, String env, String dflt) {
        String v = opts.get(key);
        if (v == null) {
            v = System.getenv(env);
        }
        return v == null || v.isEmpty() ? dflt : v;
    }

    private static String required(Map<String, String> opts, String key, String env) {
        String v = opt(opts, key, env, null);
        if (v == null) {
            usage("missing --" + key + " (or " + env + ")");
        }
        return v;
    }

    private static long parseLong(String v, String what) {
        try {
            return Long.parseLong(v.trim());
        }
        catch (NumberFormatException e) {
            usage("--" + what + " is not a number: " + v);
            return 0;
        }
    }

    private static void usage(String message) {
        System.err.println("debezium-bench: " + message);
        System.err.println("usage: DebeziumBench --slot=S --publication=P --tables=public.t --expected=N "
                + "[--host=H --port=P --db=D --user=U --timeout=SEC --prop=key=value ...]; password in DBZ_PASSWORD");
        System.exit(64);
    }
}
