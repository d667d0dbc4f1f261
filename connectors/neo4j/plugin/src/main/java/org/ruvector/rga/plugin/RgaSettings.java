package org.ruvector.rga.plugin;

import org.neo4j.configuration.SettingImpl;
import org.neo4j.configuration.SettingValueParsers;
import org.neo4j.configuration.SettingsDeclaration;
import org.neo4j.graphdb.config.Setting;
import org.neo4j.string.SecureString;

/**
 * Server settings of the plugin, valid in neo4j.conf when the jar is on the server's classpath
 * (the standard launcher puts plugins/ there):
 * <pre>
 * rga.service.url=http://127.0.0.1:8765
 * rga.service.token=...            (a secret: Neo4j hides its value in logs)
 * </pre>
 * The procedures' options map ({url, token}) overrides them; the environment variables
 * RGA_SERVICE_URL and RGA_SERVICE_TOKEN of the Neo4j process are the last fallback.
 */
public final class RgaSettings implements SettingsDeclaration {
    public static final Setting<String> url =
            SettingImpl.newBuilder("rga.service.url", SettingValueParsers.STRING, null).build();
    public static final Setting<SecureString> token =
            SettingImpl.newBuilder("rga.service.token", SettingValueParsers.SECURE_STRING, null).build();
}
