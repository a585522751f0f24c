/**
 * Rules for the anonymous namespace (MQTT_ANONYMOUS=true): topics outside the chat
 * namespaces, as a plain broker. Pure functions: the config's rules, the principal, the
 * action and the topic in; a decision out. The first rule that matches decides; none
 * matching allows (a plain broker, as before rules existed).
 *
 * Matching a PUBLISH (a topic name) is MQTT matching. A SUBSCRIBE names a filter, which
 * stands for every topic it matches: an allow rule matches it when the rule's pattern
 * covers all of them; a deny rule matches it when the pattern matches any of them. So
 * `sensors/+` is refused by a deny rule on `sensors/private/#` (it would receive
 * `sensors/private`), and is not allowed by an allow rule on `sensors/kitchen`.
 */
import type { AnonymousRule } from '../config/limits.ts';
import type { AclAction, AclRule, Principal } from './acl.ts';

export type { AnonymousRule };

/** Every topic matched by `filter` is matched by `pattern` ('#' also matches its parent level, MQTT 3.1.1 section 4.7.1.2). */
export function covers(pattern: string[], filter: string[]): boolean {
  if (pattern[0] === '#') return true;
  if (pattern.length === 0 || filter.length === 0) return pattern.length === 0 && filter.length === 0;
  const [p, ...pRest] = pattern;
  const [f, ...fRest] = filter;
  if (f === '#') return false; // only '#' covers '#', handled above
  if (f === '+') return p === '+' && covers(pRest, fRest);
  return (p === '+' || p === f) && covers(pRest, fRest);
}

/** Some topic is matched by both. */
export function intersects(a: string[], b: string[]): boolean {
  if (a[0] === '#' || b[0] === '#') return true;
  if (a.length === 0 || b.length === 0) return a.length === 0 && b.length === 0;
  const [x, ...aRest] = a;
  const [y, ...bRest] = b;
  return (x === '+' || y === '+' || x === y) && intersects(aRest, bRest);
}

function applies(rule: AnonymousRule, p: Principal, action: AclAction): boolean {
  if (rule.action !== 'both' && rule.action !== action) return false;
  const anonymous = p.user === undefined;
  if (rule.clients === 'anonymous') return anonymous;
  if (rule.clients === 'authenticated') return !anonymous;
  return true;
}

/** The decision of the rules for a topic outside the chat namespaces. */
export function anonymousRule(rules: readonly AnonymousRule[], p: Principal, action: AclAction, topic: string): AclRule {
  const levels = topic.split('/');
  for (const [i, rule] of rules.entries()) {
    if (!applies(rule, p, action)) continue;
    const pattern = rule.pattern.split('/');
    const matches = action === 'publish' || rule.allow ? covers(pattern, levels) : intersects(pattern, levels);
    if (!matches) continue;
    return rule.allow ? { decision: 'allow' } : { decision: 'deny', reason: `denied by anonymousRules[${i}] (${rule.pattern})` };
  }
  return { decision: 'allow' };
}
