package gateway.engine;

import jakarta.servlet.http.HttpServletRequest;
import java.io.IOException;
import org.springframework.core.io.Resource;
import org.springframework.core.io.support.PathMatchingResourcePatternResolver;

/**
 * Settings of the second process engine, "second", that both flavours run next
 * to "default" (per-flavour code: SecondEngineConfiguration in src/operaton/java
 * and src/camunda/java). It exists so that tests can address an engine other
 * than the default one, under /engine-rest/engine/second/...
 */
final class SecondEngine {

  static final String NAME = "second";

  /** Its own database, so nothing it holds can show up in the default engine. */
  static final String JDBC_URL = "jdbc:h2:mem:second;DB_CLOSE_DELAY=-1";

  /**
   * Same pattern as the default engine's deployment-resource-pattern in
   * application.yaml, so a model added to the folder reaches both engines.
   */
  static final String MODEL_PATTERN = "classpath:bpmn/*.bpmn";

  /** Name of its one deployment, to tell it apart from deployments made by tests. */
  static final String DEPLOYMENT_NAME = "test-engine-second";

  private static final String REST_PATH = "/engine/" + NAME;

  static Resource[] models() throws IOException {
    Resource[] models = new PathMatchingResourcePatternResolver().getResources(MODEL_PATTERN);
    if (models.length == 0) {
      // an empty engine would only fail later, in a test, with a confusing 404
      throw new IllegalStateException("no models found at " + MODEL_PATTERN);
    }
    return models;
  }

  /**
   * Profile "auth": whether a REST request addresses the second engine, which has
   * no users and no authorization checks and so is let through unauthenticated.
   * The authentication filter picks the engine from the raw request URI, while
   * Jersey routes on the decoded and normalized one; only when both are the same
   * text can "/engine/second/../../x" or "%2e%2e" not smuggle a request for the
   * default engine past the filter. Anything not plainly written is left to the
   * filter, which then answers 401 as the second engine knows no user.
   */
  static boolean isUnauthenticatedRequest(HttpServletRequest request) {
    String path = request.getPathInfo();
    if (path == null) {
      return false;
    }
    String rawPath = request.getRequestURI()
        .substring(request.getContextPath().length() + request.getServletPath().length());
    return path.equals(rawPath)
        && (path.equals(REST_PATH) || path.startsWith(REST_PATH + "/"));
  }

  private SecondEngine() {}
}
