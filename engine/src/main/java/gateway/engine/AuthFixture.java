package gateway.engine;

import java.util.List;

/**
 * Users, tenants and passwords of the Spring profile "auth". Kept apart from
 * the per-flavour AuthConfiguration (src/operaton/java, src/camunda/java) so
 * that both flavours set up exactly the same fixture and tests can rely on it.
 */
final class AuthFixture {

  static final String PROFILE = "auth";

  /** Where the REST API lives; the authentication filter guards all of it. */
  static final String REST_URL_PATTERN = "/engine-rest/*";

  /** Member of the engine's admin group, so neither authorization nor tenant checks apply. */
  static final String ADMIN_ID = "admin";
  static final String ADMIN_PASSWORD = "admin-secret";

  static final String TENANT_A = "tenant-a";
  static final String TENANT_B = "tenant-b";
  static final List<String> TENANTS = List.of(TENANT_A, TENANT_B);

  /** A plain user that belongs to one tenant; tenant membership decides what it sees. */
  record TenantUser(String id, String password, String tenantId) {}

  static final List<TenantUser> TENANT_USERS = List.of(
      new TenantUser("alice", "alice-secret", TENANT_A),
      new TenantUser("bob", "bob-secret", TENANT_B));

  /**
   * Deployed once more per tenant, beside the shared (tenant-less) auto-deployment,
   * so that /process-definition/key/gateway-waiting/tenant-id/{tenant}/start exists.
   */
  static final String TENANT_MODEL = "bpmn/gateway-waiting.bpmn";

  private AuthFixture() {}
}
