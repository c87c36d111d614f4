package gateway.engine;

import java.io.IOException;
import java.io.InputStream;
import java.util.Objects;
import org.apache.ibatis.mapping.Environment;
import org.camunda.bpm.engine.ProcessEngine;
import org.camunda.bpm.engine.ProcessEngineConfiguration;
import org.camunda.bpm.engine.impl.cfg.ProcessEngineConfigurationImpl;
import org.camunda.bpm.engine.impl.cfg.StandaloneInMemProcessEngineConfiguration;
import org.camunda.bpm.engine.impl.persistence.StrongUuidGenerator;
import org.camunda.bpm.engine.repository.DeploymentBuilder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.beans.factory.SmartInitializingSingleton;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.io.Resource;

/**
 * The second process engine, {@value SecondEngine#NAME} (Camunda flavour), in
 * every profile. The Operaton flavour has the same class on org.operaton.bpm.
 *
 * <p>It is not a Spring bean of type ProcessEngine: the starter's beans and
 * AuthConfiguration expect exactly one. The REST API does not need it to be:
 * its ProcessEngineProvider asks the static ProcessEngines registry, which
 * every engine joins when it is built and leaves when it is closed. It is not
 * registered with RuntimeContainerDelegate either: nothing here reads that
 * container (the default engine is not in it), and it would register JMX
 * MBeans, which this app otherwise keeps off.
 */
@Configuration(proxyBeanMethods = false)
class SecondEngineConfiguration {

  private static final Logger LOGGER = LoggerFactory.getLogger(SecondEngineConfiguration.class);

  @Bean
  SecondEngineLifecycle secondEngine(ProcessEngine defaultEngine) {
    return new SecondEngineLifecycle(defaultEngine);
  }

  /**
   * Builds the engine after all singletons exist, so after the default engine,
   * whose MyBatis mappings it reuses, and before the web server opens its
   * port, so no request can find it missing. A failed build fails the startup.
   */
  static final class SecondEngineLifecycle implements SmartInitializingSingleton, DisposableBean {

    private final ProcessEngine defaultEngine;
    private ProcessEngine engine;

    SecondEngineLifecycle(ProcessEngine defaultEngine) {
      this.defaultEngine = defaultEngine;
    }

    @Override
    public void afterSingletonsInstantiated() {
      engine = start((ProcessEngineConfigurationImpl) defaultEngine.getProcessEngineConfiguration());
    }

    @Override
    public void destroy() {
      if (engine != null) {
        engine.close();
        engine = null;
      }
    }

    private static ProcessEngine start(ProcessEngineConfigurationImpl defaultConfiguration) {
      StandaloneInMemProcessEngineConfiguration configuration =
          new SecondEngineProcessEngineConfiguration(defaultConfiguration);
      configuration.setProcessEngineName(SecondEngine.NAME);
      configuration.setJdbcUrl(SecondEngine.JDBC_URL);
      configuration.setJdbcUsername("sa");
      configuration.setJdbcPassword("");
      configuration.setDatabaseSchemaUpdate(ProcessEngineConfiguration.DB_SCHEMA_UPDATE_TRUE);
      configuration.setHistory(ProcessEngineConfiguration.HISTORY_FULL);
      // as the starter does for the default engine, instead of the standalone
      // counter from 1, so no id is valid in both engines
      configuration.setIdGenerator(new StrongUuidGenerator());
      // nothing in its models is asynchronous or timed
      configuration.setJobExecutorActivate(false);
      configuration.setMetricsEnabled(false);
      configuration.setDbMetricsReporterActivate(false);
      // as for the default engine: models that tests deploy need no historyTimeToLive
      configuration.setEnforceHistoryTimeToLive(false);
      ProcessEngine built = configuration.buildProcessEngine();
      try {
        deployModels(built);
      } catch (RuntimeException | IOException e) {
        built.close();
        throw new IllegalStateException("deploying the models to engine " + SecondEngine.NAME, e);
      }
      return built;
    }

    private static void deployModels(ProcessEngine engine) throws IOException {
      DeploymentBuilder deployment = engine.getRepositoryService().createDeployment()
          .name(SecondEngine.DEPLOYMENT_NAME);
      for (Resource model : SecondEngine.models()) {
        try (InputStream in = model.getInputStream()) {
          deployment.addInputStream(model.getFilename(), in);
        }
      }
      deployment.deploy();
    }
  }

  /** See {@link SharedMappingsSqlSessionFactory} for why. */
  static final class SecondEngineProcessEngineConfiguration
      extends StandaloneInMemProcessEngineConfiguration {

    private final ProcessEngineConfigurationImpl defaultConfiguration;

    SecondEngineProcessEngineConfiguration(ProcessEngineConfigurationImpl defaultConfiguration) {
      this.defaultConfiguration = defaultConfiguration;
    }

    // Runs after initDataSource (which sets databaseType) and initTransactionFactory.
    @Override
    protected void initSqlSessionFactory() {
      // The parsed statements have the database type, table prefix and
      // batching baked in; reuse them only where those are the same.
      boolean sameStatements = Objects.equals(databaseType, defaultConfiguration.getDatabaseType())
          && Objects.equals(databaseTablePrefix, defaultConfiguration.getDatabaseTablePrefix())
          && isJdbcBatchProcessing() == defaultConfiguration.isJdbcBatchProcessing();
      if (!sameStatements || defaultConfiguration.getSqlSessionFactory() == null) {
        LOGGER.info("engine {} parses its own MyBatis mappings: its database settings differ"
            + " from the default engine's", SecondEngine.NAME);
        super.initSqlSessionFactory();
        return;
      }
      LOGGER.debug("engine {} reuses the default engine's MyBatis mappings", SecondEngine.NAME);
      sqlSessionFactory = new SharedMappingsSqlSessionFactory(
          defaultConfiguration.getSqlSessionFactory().getConfiguration(),
          new Environment(SecondEngine.NAME, transactionFactory, dataSource));
    }
  }
}
