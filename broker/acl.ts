/**
 * Topic ACL (DESIGN section 4, "Topics") as pure functions. `aclRule` decides from the
 * topic and the principal alone, or says which fact it still needs (membership of a
 * conversation, or sharing one with a user); the broker looks that fact up and
 * `resolveAcl` finishes the decision. Every case is unit tested over the whole matrix.
 */
import { anonymousRule, type AnonymousRule } from './acl-anonymous.ts';

export interface Principal {
  /** undefined for an anonymous client (MQTT_ANONYMOUS=true). */
  user?: string;
  device?: string;
}

export type AclAction = 'publish' | 'subscribe';

export type AclRule =
  | { decision: 'allow' }
  | { decision: 'deny'; reason: string }
  | { decision: 'needs-member'; conv: string }
  | { decision: 'needs-contact'; user: string };

export const chatNamespaces = ['chat', 'group', 'presence', 'typing'] as const;

const allow: AclRule = { decision: 'allow' };
const deny = (reason: string): AclRule => ({ decision: 'deny', reason });

function hasWildcard(level: string): boolean {
  return level === '+' || level === '#';
}

export function aclRule(p: Principal, action: AclAction, topic: string, anonymousNamespace: boolean, anonymousRules?: readonly AnonymousRule[]): AclRule {
  const levels = topic.split('/');
  const root = levels[0];
  if (root === undefined || root === '') return deny('empty first topic level');
  if (hasWildcard(root)) {
    // A filter starting with a wildcard would match the chat namespaces too.
    return deny('wildcard at the first level');
  }
  if (root.startsWith('$')) return deny('reserved topic');
  if (!(chatNamespaces as readonly string[]).includes(root)) {
    if (!anonymousNamespace) return deny('topics outside the chat namespaces are disabled (MQTT_ANONYMOUS=false)');
    return anonymousRules?.length ? anonymousRule(anonymousRules, p, action, topic) : allow;
  }
  if (p.user === undefined || p.device === undefined) return deny('anonymous clients may not use the chat namespaces');
  if (levels.some(hasWildcard)) return deny('wildcards are not allowed in the chat namespaces');

  switch (root) {
    case 'chat': {
      // chat/{user}/in | chat/{user}/{device}/in | chat/{user}/{device}/out
      if (levels.length === 3 && levels[2] === 'in') {
        if (action === 'publish') return deny('only the server publishes on in topics');
        return levels[1] === p.user ? allow : deny("another user's inbox");
      }
      if (levels.length === 4 && (levels[3] === 'in' || levels[3] === 'out')) {
        const own = levels[1] === p.user && levels[2] === p.device;
        if (levels[3] === 'in') {
          if (action === 'publish') return deny('only the server publishes on in topics');
          return own ? allow : deny("another device's topic");
        }
        if (action === 'subscribe') return deny('nobody subscribes to out topics');
        return own ? allow : deny("another device's out topic");
      }
      return deny('unknown chat topic');
    }
    case 'group': {
      if (levels.length !== 2) return deny('unknown group topic');
      if (action === 'publish') return deny('only the server publishes on group topics');
      return { decision: 'needs-member', conv: levels[1]! };
    }
    case 'presence': {
      if (levels.length !== 2) return deny('unknown presence topic');
      if (action === 'publish') return deny('only the server publishes presence');
      if (levels[1] === p.user) return allow;
      return { decision: 'needs-contact', user: levels[1]! };
    }
    case 'typing': {
      if (levels.length !== 2) return deny('unknown typing topic');
      return { decision: 'needs-member', conv: levels[1]! };
    }
  }
  return deny('unknown topic');
}

export interface AclFacts {
  isMember(user: string, conv: string): Promise<boolean>;
  sharesConversation(user: string, other: string): Promise<boolean>;
}

export async function resolveAcl(rule: AclRule, p: Principal, facts: AclFacts): Promise<{ allowed: boolean; reason?: string }> {
  switch (rule.decision) {
    case 'allow':
      return { allowed: true };
    case 'deny':
      return { allowed: false, reason: rule.reason };
    case 'needs-member':
      return (await facts.isMember(p.user!, rule.conv)) ? { allowed: true } : { allowed: false, reason: 'not a member' };
    case 'needs-contact':
      return (await facts.sharesConversation(p.user!, rule.user))
        ? { allowed: true }
        : { allowed: false, reason: 'no shared conversation' };
  }
}

/** clientId `{userId}:{deviceId}` (DESIGN section 4, "Connect"). */
export function parseClientId(clientId: string): { user: string; device: string } | undefined {
  const m = /^([A-Za-z0-9_-]{1,64}):([A-Za-z0-9_-]{1,64})$/.exec(clientId);
  return m ? { user: m[1]!, device: m[2]! } : undefined;
}
