package gateway.engine;

import java.sql.Connection;
import java.sql.SQLException;
import org.apache.ibatis.exceptions.ExceptionFactory;
import org.apache.ibatis.executor.ErrorContext;
import org.apache.ibatis.mapping.Environment;
import org.apache.ibatis.session.Configuration;
import org.apache.ibatis.session.ExecutorType;
import org.apache.ibatis.session.SqlSession;
import org.apache.ibatis.session.SqlSessionFactory;
import org.apache.ibatis.session.TransactionIsolationLevel;
import org.apache.ibatis.session.defaults.DefaultSqlSession;
import org.apache.ibatis.transaction.Transaction;

/**
 * Lets the second engine use the default engine's parsed MyBatis mappings with
 * its own database. Parsing the mappings is nearly all the cost of building an
 * engine (about 2.3 s of CPU here, against 0.1 s for the rest), so building
 * the second one from scratch would add that to every startup.
 *
 * <p>A MyBatis Configuration holds one Environment (data source and
 * transactions), and MyBatis's DefaultSqlSessionFactory always opens sessions
 * on it. This factory opens them, the same way, on the Environment given here
 * instead, and only reads the shared Configuration. The only other MyBatis code
 * that reads the Configuration's Environment for a connection is lazy loading
 * (ResultLoader), which the engines switch off in their mappings.xml.
 */
final class SharedMappingsSqlSessionFactory implements SqlSessionFactory {

  private final Configuration configuration;
  private final Environment environment;

  SharedMappingsSqlSessionFactory(Configuration configuration, Environment environment) {
    if (configuration.isLazyLoadingEnabled()) {
      throw new IllegalStateException(
          "lazy loading would open connections on the other engine's database");
    }
    this.configuration = configuration;
    this.environment = environment;
  }

  @Override
  public SqlSession openSession() {
    return open(configuration.getDefaultExecutorType(), null, false);
  }

  @Override
  public SqlSession openSession(boolean autoCommit) {
    return open(configuration.getDefaultExecutorType(), null, autoCommit);
  }

  @Override
  public SqlSession openSession(Connection connection) {
    return open(configuration.getDefaultExecutorType(), connection);
  }

  @Override
  public SqlSession openSession(TransactionIsolationLevel level) {
    return open(configuration.getDefaultExecutorType(), level, false);
  }

  @Override
  public SqlSession openSession(ExecutorType execType) {
    return open(execType, null, false);
  }

  @Override
  public SqlSession openSession(ExecutorType execType, boolean autoCommit) {
    return open(execType, null, autoCommit);
  }

  @Override
  public SqlSession openSession(ExecutorType execType, TransactionIsolationLevel level) {
    return open(execType, level, false);
  }

  @Override
  public SqlSession openSession(ExecutorType execType, Connection connection) {
    return open(execType, connection);
  }

  @Override
  public Configuration getConfiguration() {
    return configuration;
  }

  // Both open(...) follow DefaultSqlSessionFactory, with this.environment for
  // configuration.getEnvironment().
  private SqlSession open(ExecutorType execType, TransactionIsolationLevel level,
      boolean autoCommit) {
    Transaction tx = null;
    try {
      tx = environment.getTransactionFactory()
          .newTransaction(environment.getDataSource(), level, autoCommit);
      return new DefaultSqlSession(configuration, configuration.newExecutor(tx, execType),
          autoCommit);
    } catch (Exception e) {
      closeQuietly(tx);
      throw ExceptionFactory.wrapException("Error opening session.  Cause: " + e, e);
    } finally {
      ErrorContext.instance().reset();
    }
  }

  private SqlSession open(ExecutorType execType, Connection connection) {
    try {
      boolean autoCommit;
      try {
        autoCommit = connection.getAutoCommit();
      } catch (SQLException e) {
        // as MyBatis: many drivers do not support getAutoCommit()
        autoCommit = true;
      }
      Transaction tx = environment.getTransactionFactory().newTransaction(connection);
      return new DefaultSqlSession(configuration, configuration.newExecutor(tx, execType),
          autoCommit);
    } catch (Exception e) {
      throw ExceptionFactory.wrapException("Error opening session.  Cause: " + e, e);
    } finally {
      ErrorContext.instance().reset();
    }
  }

  private static void closeQuietly(Transaction tx) {
    if (tx != null) {
      try {
        tx.close();
      } catch (SQLException ignored) {
        // the original failure is the one to report
      }
    }
  }
}
