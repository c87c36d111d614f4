package gateway.engine;

import org.glassfish.jersey.server.ServerProperties;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.jersey.ResourceConfigCustomizer;
import org.springframework.context.annotation.Bean;

/**
 * Boots the process engine and its REST API (/engine-rest). Everything
 * engine-specific comes from the flavour's Spring Boot starter, so this class
 * is shared by the Operaton and the Camunda build.
 */
@SpringBootApplication
public class EngineApplication {

  public static void main(String[] args) {
    SpringApplication.run(EngineApplication.class, args);
  }

  /**
   * No WADL: JAXB is not on the classpath, so Jersey would only log a warning
   * about it at every start (Operaton's REST config does not switch it off).
   */
  @Bean
  ResourceConfigCustomizer disableWadl() {
    return config -> config.property(ServerProperties.WADL_FEATURE_DISABLE, true);
  }
}
