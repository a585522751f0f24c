/**
 * The audit log (docs/hardening.md): security events as structured log lines
 * `{audit: true, event, user, device, ip, reason, ...}` and a count per event in
 * `chat_audit_events_total{event}`. One function, `audit(event, fields)`, used wherever
 * such an event happens.
 */
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../core/log.ts';

export const auditEvents = [
  'login_failed',
  'login_lockout',
  'token_revoked',
  'acl_denied',
  'rate_limit_disconnect',
  'slow_consumer_disconnect',
  'connect_refused',
  'packet_too_large',
  'admin_action',
] as const;
export type AuditEvent = (typeof auditEvents)[number];

export interface AuditFields {
  user?: string;
  device?: string;
  ip?: string;
  reason?: string;
  [field: string]: unknown;
}

export type Audit = (event: AuditEvent, fields?: AuditFields) => void;

/** Events an operator should look at; the others are routine and logged at info. */
const warnEvents: ReadonlySet<AuditEvent> = new Set(['login_lockout', 'rate_limit_disconnect', 'slow_consumer_disconnect', 'token_revoked', 'packet_too_large']);

export function createAudit(log: Logger, registry: Registry): Audit {
  const counter = new Counter({ name: 'chat_audit_events_total', help: 'Security events written to the audit log', labelNames: ['event'], registers: [registry] });
  for (const e of auditEvents) counter.inc({ event: e }, 0);
  return (event, fields = {}) => {
    counter.inc({ event });
    const line = { audit: true, event, user: fields.user, device: fields.device, ip: fields.ip, reason: fields.reason, ...fields };
    if (warnEvents.has(event)) log.warn(line, `audit ${event}`);
    else log.info(line, `audit ${event}`);
  };
}
