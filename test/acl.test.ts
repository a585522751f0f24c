import { describe, it, expect } from 'vitest';
import { aclRule, resolveAcl, parseClientId, type Principal } from '../broker/acl.ts';

const alice: Principal = { user: 'alice', device: 'phone' };
const anon: Principal = {};
const rule = (p: Principal, action: 'publish' | 'subscribe', topic: string, anonymous = false) => aclRule(p, action, topic, anonymous).decision;

describe('topic ACL (DESIGN section 4)', () => {
  // [topic, publish by alice/phone, subscribe by alice/phone]
  const matrix: [string, string, string][] = [
    ['chat/alice/phone/out', 'allow', 'deny'],
    ['chat/alice/laptop/out', 'deny', 'deny'],
    ['chat/bob/phone/out', 'deny', 'deny'],
    ['chat/alice/in', 'deny', 'allow'],
    ['chat/bob/in', 'deny', 'deny'],
    ['chat/alice/phone/in', 'deny', 'allow'],
    ['chat/alice/laptop/in', 'deny', 'deny'],
    ['chat/bob/phone/in', 'deny', 'deny'],
    ['chat/alice', 'deny', 'deny'],
    ['chat/alice/phone/x', 'deny', 'deny'],
    ['group/c_1', 'deny', 'needs-member'],
    ['group/c_1/x', 'deny', 'deny'],
    ['presence/alice', 'deny', 'allow'],
    ['presence/bob', 'deny', 'needs-contact'],
    ['typing/c_1', 'needs-member', 'needs-member'],
    ['chat/+/in', 'deny', 'deny'],
    ['chat/alice/#', 'deny', 'deny'],
    ['presence/+', 'deny', 'deny'],
    ['#', 'deny', 'deny'],
    ['+/alice/in', 'deny', 'deny'],
    ['$SYS/broker', 'deny', 'deny'],
    ['sensors/kitchen', 'deny', 'deny'],
  ];
  it.each(matrix)('%s: publish %s, subscribe %s', (topic, pub, sub) => {
    expect(rule(alice, 'publish', topic)).toBe(pub);
    expect(rule(alice, 'subscribe', topic)).toBe(sub);
  });

  it('lets anonymous clients use only topics outside the chat namespaces, and only when enabled', () => {
    expect(rule(anon, 'publish', 'sensors/kitchen', true)).toBe('allow');
    expect(rule(anon, 'subscribe', 'sensors/#', true)).toBe('allow');
    expect(rule(anon, 'subscribe', 'sensors/#', false)).toBe('deny');
    for (const t of ['chat/alice/in', 'group/c_1', 'presence/alice', 'typing/c_1', '#', '+/x']) {
      expect(rule(anon, 'subscribe', t, true)).toBe('deny');
      expect(rule(anon, 'publish', t.replace(/[#+]/g, 'x'), true)).toBe(t.startsWith('+') || t === '#' ? 'allow' : 'deny');
    }
  });

  it('resolves membership and contact facts', async () => {
    const facts = {
      isMember: async (u: string, c: string) => u === 'alice' && c === 'c_1',
      sharesConversation: async (a: string, b: string) => a === 'alice' && b === 'bob',
    };
    expect((await resolveAcl(aclRule(alice, 'subscribe', 'group/c_1', false), alice, facts)).allowed).toBe(true);
    expect((await resolveAcl(aclRule(alice, 'subscribe', 'group/c_2', false), alice, facts)).allowed).toBe(false);
    expect((await resolveAcl(aclRule(alice, 'subscribe', 'presence/bob', false), alice, facts)).allowed).toBe(true);
    expect((await resolveAcl(aclRule(alice, 'subscribe', 'presence/carol', false), alice, facts)).allowed).toBe(false);
  });

  it('parses clientId {user}:{device}', () => {
    expect(parseClientId('alice:phone')).toEqual({ user: 'alice', device: 'phone' });
    for (const bad of ['alice', 'alice:', ':phone', 'a:b:c', 'al ice:phone', `${'a'.repeat(65)}:p`]) expect(parseClientId(bad)).toBeUndefined();
  });
});
