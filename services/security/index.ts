/** The security service's public API: authentication, permissions, tenants, audit. */
export { SecurityManager, type Principal, type AuthResult, type AuthContext, type ReloadSummary, type SecurityManagerOptions, UNAUTHORIZED_MESSAGE } from './security-manager.ts';
export { PermissionSet, type Coverage, type DeliveryContext } from './permission-set.ts';
export { Projection } from './field-projection.ts';
export { AuditLog, type AuditEvent, type AuthChannel } from './audit.ts';
export type { AuthFailureReason } from './token-verifier.ts';
export type { ConnectionLease } from './tenant-connections.ts';
export {
  loadSecurityConfig,
  DEFAULT_TENANT_LIMITS,
  type SecurityConfig,
  type SecuritySource,
  type JwtSettings,
  type JwtAlgorithm,
  type RoleSpec,
  type ReadGrantSpec,
  type FieldRule,
  type TenantLimits,
} from './security-config.ts';
