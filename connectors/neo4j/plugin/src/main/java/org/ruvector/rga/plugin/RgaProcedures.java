package org.ruvector.rga.plugin;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.neo4j.configuration.Config;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.graphdb.Label;
import org.neo4j.graphdb.Node;
import org.neo4j.graphdb.Transaction;
import org.neo4j.kernel.internal.GraphDatabaseAPI;
import org.neo4j.procedure.Context;
import org.neo4j.procedure.Description;
import org.neo4j.procedure.Mode;
import org.neo4j.procedure.Name;
import org.neo4j.procedure.Procedure;
import org.neo4j.string.SecureString;

/**
 * Cypher procedures that call the ruvector-graph-attn service:
 * <pre>
 * CALL rga.search($vector, 10, {url: 'http://127.0.0.1:8765', token: $token})
 *   YIELD node, id, score, vectorScore, rank, attention
 * CALL rga.rerank($vector, candidates, 10, {scores: scores})   // candidates: nodes or ids
 *   YIELD node, id, score, vectorScore, rank, attention
 * </pre>
 * Options: {@code url}, {@code token} (else the settings rga.service.url / rga.service.token, else
 * the environment variables RGA_SERVICE_URL / RGA_SERVICE_TOKEN), {@code label} and
 * {@code idProperty} (how result ids map to nodes; default Item / id), {@code timeoutMs}
 * (default 30000), {@code scores} (rerank: the retriever's scores), {@code filter} (search:
 * allow-list of ids), and the scorer parameters {@code scorer, hops, candidates, temperature,
 * blend, direction, maxNeighbors}. Service errors become procedure failures whose message holds
 * the service's error class and message.
 */
public class RgaProcedures {
    private static final HttpClient HTTP = HttpClient.newBuilder()
            .connectTimeout(Duration.ofSeconds(5))
            .version(HttpClient.Version.HTTP_1_1)
            .build();
    private static final Map<String, String> PARAMS = Map.of(
            "scorer", "scorer", "hops", "hops", "candidates", "candidates", "temperature", "temperature",
            "blend", "blend", "direction", "direction", "maxNeighbors", "max_neighbors");

    @Context
    public GraphDatabaseService db;

    @Context
    public Transaction tx;

    /** One re-ranked hit. */
    public static class Hit {
        public Node node;
        public Object id;
        public double score;
        public double vectorScore;
        public long rank;
        public long vectorRank;
        public boolean inGraph;
        public List<Map<String, Object>> attention;
    }

    @Procedure(name = "rga.search", mode = Mode.READ)
    @Description("rga.search(vector, k, options) :: (node, id, score, vectorScore, rank, vectorRank, inGraph, attention)"
            + " - graph-re-ranked nearest neighbours from the ruvector-graph-attn service")
    public Stream<Hit> search(@Name("vector") List<Double> vector, @Name(value = "k", defaultValue = "10") long k,
                              @Name(value = "options", defaultValue = "{}") Map<String, Object> options) {
        Map<String, Object> opts = options == null ? Map.of() : options;
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("vector", checkVector(vector));
        body.put("k", k);
        if (opts.get("filter") != null) body.put("filter", opts.get("filter"));
        addParams(body, opts);
        Object res = call("/search", body, opts);
        List<?> results = (List<?>) ((Map<?, ?>) res).get("results");
        return hits((List<?>) results.get(0), opts);
    }

    @Procedure(name = "rga.rerank", mode = Mode.READ)
    @Description("rga.rerank(vector, candidates, k, options) :: (node, id, score, vectorScore, rank, vectorRank, inGraph,"
            + " attention) - re-rank candidate nodes or ids (e.g. vector-index hits) with the graph")
    public Stream<Hit> rerank(@Name("vector") List<Double> vector, @Name("candidates") List<Object> candidates,
                              @Name(value = "k", defaultValue = "10") long k,
                              @Name(value = "options", defaultValue = "{}") Map<String, Object> options) {
        Map<String, Object> opts = options == null ? Map.of() : options;
        String idp = str(opts.get("idProperty"), "id");
        if (candidates == null) throw new IllegalArgumentException("candidates must be a list of nodes or ids");
        List<Object> ids = new ArrayList<>(candidates.size());
        for (Object c : candidates) {
            if (c instanceof Node n) {
                Object id = n.getProperty(idp, null);
                if (id == null) {
                    throw new IllegalArgumentException("candidate node " + n.getElementId() + " has no property '" + idp + "'");
                }
                ids.add(id);
            } else if (c instanceof Number || c instanceof String) {
                ids.add(c);
            } else {
                throw new IllegalArgumentException("candidates must be nodes, integers or strings; got "
                        + (c == null ? "null" : c.getClass().getSimpleName()));
            }
        }
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("vector", checkVector(vector));
        body.put("ids", ids);
        if (opts.get("scores") != null) body.put("scores", opts.get("scores"));
        body.put("k", k);
        addParams(body, opts);
        Object res = call("/rerank", body, opts);
        return hits((List<?>) ((Map<?, ?>) res).get("results"), opts);
    }

    // ------------------------------------------------------------------ plumbing
    private static List<Double> checkVector(List<Double> v) {
        if (v == null || v.isEmpty()) throw new IllegalArgumentException("vector must be a non-empty list of numbers");
        for (Object x : v) {
            if (x == null) throw new IllegalArgumentException("vector contains null");
        }
        return v;
    }

    private static void addParams(Map<String, Object> body, Map<String, Object> opts) {
        for (Map.Entry<String, String> e : PARAMS.entrySet()) {
            Object v = opts.get(e.getKey());
            if (v != null) body.put(e.getValue(), v);
        }
    }

    private static String str(Object v, String dflt) {
        return v == null ? dflt : String.valueOf(v);
    }

    private Config config() {
        try {
            return ((GraphDatabaseAPI) db).getDependencyResolver().resolveDependency(Config.class);
        } catch (RuntimeException | LinkageError e) {
            return null;
        }
    }

    private String setting(Object option, boolean secret, String env) {
        if (option != null) return String.valueOf(option);
        Config cfg = config();
        if (cfg != null) {
            try {
                if (secret) {
                    SecureString s = cfg.get(RgaSettings.token);
                    if (s != null) return s.getString();
                } else {
                    String s = cfg.get(RgaSettings.url);
                    if (s != null) return s;
                }
            } catch (RuntimeException | LinkageError e) {
                // settings not declared in this server (plugin jar not on its classpath): fall through
            }
        }
        return System.getenv(env);
    }

    private Object call(String path, Map<String, Object> body, Map<String, Object> opts) {
        String url = setting(opts.get("url"), false, "RGA_SERVICE_URL");
        if (url == null || url.isBlank()) {
            throw new IllegalArgumentException("no rga service URL: pass {url: ...} in the options, set rga.service.url "
                    + "in the server configuration, or RGA_SERVICE_URL in its environment");
        }
        String token = setting(opts.get("token"), true, "RGA_SERVICE_TOKEN");
        long timeoutMs = opts.get("timeoutMs") instanceof Number n ? n.longValue() : 30_000L;
        String base = url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
        HttpRequest.Builder req;
        try {
            req = HttpRequest.newBuilder(URI.create(base + path));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("bad rga service URL '" + url + "': " + e.getMessage());
        }
        req.timeout(Duration.ofMillis(Math.max(1, timeoutMs)))
                .header("content-type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(Json.write(body), StandardCharsets.UTF_8));
        if (token != null && !token.isEmpty()) req.header("authorization", "Bearer " + token);
        HttpResponse<String> resp;
        try {
            resp = HTTP.send(req.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new RuntimeException("rga service at " + base + " unreachable: " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RuntimeException("interrupted while calling the rga service", e);
        }
        Object parsed;
        try {
            parsed = Json.parse(resp.body());
        } catch (RuntimeException e) {
            throw new RuntimeException("rga service answered " + resp.statusCode() + " with a body that is not JSON");
        }
        if (resp.statusCode() / 100 != 2) {
            String err = "ServiceError";
            String msg = resp.body();
            if (parsed instanceof Map<?, ?> m) {
                err = str(m.get("error"), err);
                msg = str(m.get("message"), msg);
            }
            throw new RuntimeException("rga service error " + resp.statusCode() + " " + err + ": " + msg);
        }
        return parsed;
    }

    private Stream<Hit> hits(List<?> rows, Map<String, Object> opts) {
        Label label = Label.label(str(opts.get("label"), "Item"));
        String idp = str(opts.get("idProperty"), "id");
        List<Hit> out = new ArrayList<>(rows.size());
        for (Object o : rows) {
            Map<?, ?> r = (Map<?, ?>) o;
            Hit h = new Hit();
            h.id = r.get("id");
            h.node = h.id == null ? null : tx.findNode(label, idp, h.id);
            h.score = ((Number) r.get("score")).doubleValue();
            h.vectorScore = ((Number) r.get("vector_score")).doubleValue();
            h.rank = ((Number) r.get("rank")).longValue();
            h.vectorRank = ((Number) r.get("vector_rank")).longValue();
            h.inGraph = Boolean.TRUE.equals(r.get("in_graph"));
            List<Map<String, Object>> att = new ArrayList<>();
            Object a = r.get("attention");
            if (a instanceof List<?> pairs) {
                for (Object p : pairs) {
                    List<?> pair = (List<?>) p;
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("id", pair.get(0));
                    m.put("weight", ((Number) pair.get(1)).doubleValue());
                    att.add(m);
                }
            }
            h.attention = att;
            out.add(h);
        }
        return out.stream();
    }
}
