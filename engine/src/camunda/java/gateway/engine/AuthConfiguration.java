package gateway.engine;

import static gateway.engine.AuthFixture.ADMIN_ID;
import static gateway.engine.AuthFixture.ADMIN_PASSWORD;
import static gateway.engine.AuthFixture.TENANTS;
import static gateway.engine.AuthFixture.TENANT_MODEL;
import static gateway.engine.AuthFixture.TENANT_USERS;

import org.camunda.bpm.engine.AuthorizationService;
import org.camunda.bpm.engine.IdentityService;
import org.camunda.bpm.engine.ProcessEngine;
import org.camunda.bpm.engine.RepositoryService;
import org.camunda.bpm.engine.authorization.Authorization;
import org.camunda.bpm.engine.authorization.AuthorizationQuery;
import org.camunda.bpm.engine.authorization.Groups;
import org.camunda.bpm.engine.authorization.Permission;
import org.camunda.bpm.engine.authorization.Permissions;
import org.camunda.bpm.engine.authorization.ProcessDefinitionPermissions;
import org.camunda.bpm.engine.authorization.ProcessInstancePermissions;
import org.camunda.bpm.engine.authorization.Resource;
import org.camunda.bpm.engine.authorization.Resources;
import org.camunda.bpm.engine.identity.Group;
import org.camunda.bpm.engine.identity.Tenant;
import org.camunda.bpm.engine.identity.User;
import org.camunda.bpm.engine.rest.security.auth.ProcessEngineAuthenticationFilter;
import org.camunda.bpm.engine.rest.security.auth.impl.HttpBasicAuthenticationProvider;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import java.io.IOException;
import org.springframework.beans.factory.SmartInitializingSingleton;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Profile;

/**
 * Spring profile "auth" (Camunda flavour): HTTP basic authentication on the
 * REST API and the users, tenants and authorizations of {@link AuthFixture}.
 * Authorization checks themselves are switched on in application-auth.yaml.
 * The Operaton flavour has the same class on org.operaton.bpm.
 */
@Configuration(proxyBeanMethods = false)
@Profile(AuthFixture.PROFILE)
class AuthConfiguration {

  /**
   * The engine's own filter rather than Spring Security: it is what a real
   * engine-rest deployment uses, and it puts the user, its groups and its
   * tenants into the engine's authentication, which the checks rely on.
   */
  @Bean
  FilterRegistrationBean<ProcessEngineAuthenticationFilter> engineRestBasicAuth() {
    FilterRegistrationBean<ProcessEngineAuthenticationFilter> registration =
        new FilterRegistrationBean<>(new SecondEngineOpenFilter());
    registration.setName("engine-rest-basic-auth");
    registration.addInitParameter(
        ProcessEngineAuthenticationFilter.AUTHENTICATION_PROVIDER_PARAM,
        HttpBasicAuthenticationProvider.class.getName());
    registration.addUrlPatterns(AuthFixture.REST_URL_PATTERN);
    return registration;
  }

  /**
   * The filter would authenticate a request for the second engine against that
   * engine's users, and it has none (this profile only sets up the default
   * engine), so every such request would get 401. It stays open instead, as
   * without the profile; see {@link SecondEngine#isUnauthenticatedRequest}.
   */
  static final class SecondEngineOpenFilter extends ProcessEngineAuthenticationFilter {

    @Override
    public void doFilter(ServletRequest request, ServletResponse response, FilterChain chain)
        throws IOException, ServletException {
      if (SecondEngine.isUnauthenticatedRequest((HttpServletRequest) request)) {
        chain.doFilter(request, response);
      } else {
        super.doFilter(request, response, chain);
      }
    }
  }

  /**
   * Runs after all singletons exist but before the web server opens its port,
   * so no request can arrive before the users and tenant deployments are there.
   */
  @Bean
  SmartInitializingSingleton authFixtureLoader(ProcessEngine engine) {
    return () -> load(engine);
  }

  // Every step checks first (the deployments through duplicate filtering), so
  // loading twice, or into a kept database, changes nothing.
  static void load(ProcessEngine engine) {
    IdentityService identity = engine.getIdentityService();
    AuthorizationService authorizations = engine.getAuthorizationService();
    RepositoryService repository = engine.getRepositoryService();

    user(identity, ADMIN_ID, ADMIN_PASSWORD);
    group(identity, Groups.CAMUNDA_ADMIN, "Camunda administrators", Groups.GROUP_TYPE_SYSTEM);
    groupMember(identity, Groups.CAMUNDA_ADMIN, ADMIN_ID);
    // The admin group only skips tenant checks and guards admin-only commands;
    // queries still filter by authorizations, so it needs ALL on everything
    // (as the starter's admin-user option and the webapps' first-user setup do).
    for (Resources resource : Resources.values()) {
      grant(authorizations, null, Groups.CAMUNDA_ADMIN, resource, Permissions.ALL);
    }

    for (String tenantId : TENANTS) {
      tenant(identity, tenantId);
      repository.createDeployment()
          .name(TENANT_MODEL + "@" + tenantId)
          .tenantId(tenantId)
          .addClasspathResource(TENANT_MODEL)
          .enableDuplicateFiltering(false)
          .deploy();
    }

    for (AuthFixture.TenantUser u : TENANT_USERS) {
      user(identity, u.id(), u.password());
      tenantMember(identity, u.tenantId(), u.id());
      grant(authorizations, u.id(), null, Resources.PROCESS_INSTANCE,
          ProcessInstancePermissions.CREATE, ProcessInstancePermissions.READ);
      grant(authorizations, u.id(), null, Resources.PROCESS_DEFINITION,
          ProcessDefinitionPermissions.READ, ProcessDefinitionPermissions.CREATE_INSTANCE,
          ProcessDefinitionPermissions.READ_INSTANCE, ProcessDefinitionPermissions.READ_HISTORY);
      grant(authorizations, u.id(), null, Resources.DEPLOYMENT, Permissions.READ);
    }
  }

  private static void user(IdentityService identity, String id, String password) {
    if (identity.createUserQuery().userId(id).count() > 0) {
      return;
    }
    User user = identity.newUser(id);
    user.setFirstName(id);
    user.setLastName("test");
    user.setEmail(id + "@gateway.test");
    user.setPassword(password);
    identity.saveUser(user);
  }

  private static void group(IdentityService identity, String id, String name, String type) {
    if (identity.createGroupQuery().groupId(id).count() > 0) {
      return;
    }
    Group group = identity.newGroup(id);
    group.setName(name);
    group.setType(type);
    identity.saveGroup(group);
  }

  private static void groupMember(IdentityService identity, String groupId, String userId) {
    if (identity.createGroupQuery().groupId(groupId).groupMember(userId).count() == 0) {
      identity.createMembership(userId, groupId);
    }
  }

  private static void tenant(IdentityService identity, String id) {
    if (identity.createTenantQuery().tenantId(id).count() > 0) {
      return;
    }
    Tenant tenant = identity.newTenant(id);
    tenant.setName(id);
    identity.saveTenant(tenant);
  }

  private static void tenantMember(IdentityService identity, String tenantId, String userId) {
    if (identity.createTenantQuery().tenantId(tenantId).userMember(userId).count() == 0) {
      identity.createTenantUserMembership(tenantId, userId);
    }
  }

  /** One GRANT per user (or group) and resource type, on every resource id ("*"). */
  private static void grant(AuthorizationService authorizations, String userId, String groupId,
      Resource resource, Permission... permissions) {
    AuthorizationQuery query = authorizations.createAuthorizationQuery()
        .authorizationType(Authorization.AUTH_TYPE_GRANT)
        .resourceType(resource)
        .resourceId(Authorization.ANY);
    Authorization grant = (userId != null ? query.userIdIn(userId) : query.groupIdIn(groupId))
        .singleResult();
    if (grant == null) {
      grant = authorizations.createNewAuthorization(Authorization.AUTH_TYPE_GRANT);
      grant.setUserId(userId);
      grant.setGroupId(groupId);
      grant.setResource(resource);
      grant.setResourceId(Authorization.ANY);
    }
    for (Permission permission : permissions) {
      grant.addPermission(permission);
    }
    authorizations.saveAuthorization(grant);
  }
}
