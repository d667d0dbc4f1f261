package org.ruvector.rga;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.io.ByteUnit;

/**
 * Embedded Neo4j Community DBMS with the Bolt connector on 127.0.0.1, for tests, demos and benchmarks.
 *
 * <pre>
 * java -Xmx1g -cp ... org.ruvector.rga.EmbeddedNeo4j --port 7687 --data /tmp/dir
 *      [--no-auth] [--pagecache 64m] [--exit-on-stdin-eof] [--plugins DIR]
 * </pre>
 *
 * {@code --plugins DIR} sets the DBMS's plugin directory ({@code server.directories.plugins}): the embedded DBMS
 * loads procedure jars from there exactly as a standalone server loads its {@code plugins/} folder (the
 * procedure classes do not need to be on the launcher's classpath).
 *
 * With auth (the default) the password of user {@code neo4j} is read from the environment variable
 * {@code RGA_NEO4J_PASSWORD} (never from the command line, so it does not show in process lists) and
 * set without a forced change. When Bolt accepts connections one line is printed on stdout:
 * {@code RGA-NEO4J-READY bolt://127.0.0.1:PORT}. SIGTERM (or stdin EOF with --exit-on-stdin-eof, so the
 * server dies with the process that started it) shuts the DBMS down cleanly through a shutdown hook;
 * {@code RGA-NEO4J-STOPPED} is printed when it is down. Exit code 2 means bad arguments, 3 a failed start.
 */
public final class EmbeddedNeo4j {
    public static final String READY = "RGA-NEO4J-READY";
    public static final String STOPPED = "RGA-NEO4J-STOPPED";
    public static final String PASSWORD_ENV = "RGA_NEO4J_PASSWORD";

    private EmbeddedNeo4j() {}

    private static void usage(String why) {
        System.err.println("EmbeddedNeo4j: " + why);
        System.err.println("usage: EmbeddedNeo4j --port N --data DIR [--no-auth] [--pagecache SIZE] [--exit-on-stdin-eof] [--plugins DIR]");
        System.exit(2);
    }

    private static long parseSize(String s) {
        String t = s.trim().toLowerCase();
        long mult = 1;
        if (t.endsWith("k")) { mult = ByteUnit.kibiBytes(1); t = t.substring(0, t.length() - 1); }
        else if (t.endsWith("m")) { mult = ByteUnit.mebiBytes(1); t = t.substring(0, t.length() - 1); }
        else if (t.endsWith("g")) { mult = ByteUnit.gibiBytes(1); t = t.substring(0, t.length() - 1); }
        return Long.parseLong(t) * mult;
    }

    public static void main(String[] args) throws Exception {
        int port = -1;
        Path data = null;
        Path plugins = null;
        boolean auth = true;
        boolean exitOnEof = false;
        long pagecache = ByteUnit.mebiBytes(64);
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--port":
                    if (++i >= args.length) usage("--port needs a value");
                    try { port = Integer.parseInt(args[i]); } catch (NumberFormatException e) { usage("bad port " + args[i]); }
                    break;
                case "--data":
                    if (++i >= args.length) usage("--data needs a value");
                    data = Path.of(args[i]).toAbsolutePath();
                    break;
                case "--pagecache":
                    if (++i >= args.length) usage("--pagecache needs a value");
                    try { pagecache = parseSize(args[i]); } catch (NumberFormatException e) { usage("bad size " + args[i]); }
                    break;
                case "--plugins":
                    if (++i >= args.length) usage("--plugins needs a value");
                    plugins = Path.of(args[i]).toAbsolutePath();
                    break;
                case "--no-auth": auth = false; break;
                case "--exit-on-stdin-eof": exitOnEof = true; break;
                default: usage("unknown argument " + a);
            }
        }
        if (port < 1 || port > 65535) usage("--port must be 1..65535");
        if (data == null) usage("--data is required");
        String password = System.getenv(PASSWORD_ENV);
        if (auth && (password == null || password.length() < 8)) {
            usage("auth is on: set " + PASSWORD_ENV + " to a password of at least 8 characters, or pass --no-auth");
        }
        Files.createDirectories(data);

        final DatabaseManagementService dbms;
        try {
            DatabaseManagementServiceBuilder builder = new DatabaseManagementServiceBuilder(data);
            if (plugins != null) {
                builder.setConfig(GraphDatabaseSettings.plugin_dir, plugins);
            }
            dbms = builder
                    .setConfig(BoltConnector.enabled, true)
                    .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                    .setConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", port))
                    .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                    .setConfig(GraphDatabaseSettings.auth_enabled, auth)
                    .setConfig(GraphDatabaseSettings.pagecache_memory, pagecache)
                    .setConfig(GraphDatabaseSettings.udc_enabled, false)
                    // a test server: do not wait 5 s per connector for idle clients at shutdown
                    .setConfig(BoltConnectorInternalSettings.connection_shutdown_wait_time, Duration.ofMillis(500))
                    .setConfig(BoltConnectorInternalSettings.thread_pool_shutdown_wait_time, Duration.ofMillis(500))
                    .setConfig(BoltConnectorInternalSettings.enable_local_connector, false)
                    .build();
        } catch (RuntimeException e) {
            System.err.println("EmbeddedNeo4j: start failed: " + e);
            System.exit(3);
            return;
        }
        final AtomicBoolean down = new AtomicBoolean(false);
        final CountDownLatch stopped = new CountDownLatch(1);
        Runnable stop = () -> {
            if (down.compareAndSet(false, true)) {
                try {
                    dbms.shutdown();
                } finally {
                    System.out.println(STOPPED);
                    System.out.flush();
                    stopped.countDown();
                }
            }
        };
        Runtime.getRuntime().addShutdownHook(new Thread(stop, "rga-neo4j-shutdown"));

        if (auth) {
            try {
                dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME).executeTransactionally(
                        "ALTER USER neo4j SET PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password));
            } catch (RuntimeException e) {
                // Restart on an existing data folder with the same password: nothing to change.
                // (The message of a failed ALTER USER does not contain the parameter value.)
                String msg = String.valueOf(e.getMessage());
                if (!msg.contains("cannot be the same")) {
                    System.err.println("EmbeddedNeo4j: could not set the initial password: " + msg);
                    System.exit(3);
                }
            }
        }
        // Touch the default database so the first client query does not pay for its start.
        dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME).executeTransactionally("RETURN 1");

        System.out.println(READY + " bolt://127.0.0.1:" + port);
        System.out.flush();

        if (exitOnEof) {
            Thread watcher = new Thread(() -> {
                InputStream in = System.in;
                byte[] buf = new byte[256];
                try {
                    while (in.read(buf) >= 0) {
                        // discard
                    }
                } catch (IOException ignored) {
                    // treat as EOF
                }
                System.exit(0); // runs the shutdown hook
            }, "rga-neo4j-stdin-watch");
            watcher.setDaemon(true);
            watcher.start();
        }
        stopped.await();
    }
}
