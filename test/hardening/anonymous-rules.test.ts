import { describe, it, expect } from 'vitest';
import { anonymousRule, covers, intersects } from '../../broker/acl-anonymous.ts';
import { aclRule, type Principal } from '../../broker/acl.ts';
import { anonymousRulesSchema, isTopicFilter, type AnonymousRule } from '../../config/limits.ts';
import { loadConfig } from '../../config/index.ts';

const l = (t: string) => t.split('/');
const anon: Principal = {};
const alice: Principal = { user: 'alice', device: 'phone' };
const rules = (r: Partial<AnonymousRule>[]): AnonymousRule[] => anonymousRulesSchema.parse(r) as AnonymousRule[];

describe('topic filter algebra', () => {
  it.each([
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['a/#', 'a/+', true],
    ['a/#', 'a/#', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/+', true],
    ['a/+', 'a/#', false],
    ['a/+', 'a/b/c', false],
    ['a/b', 'a/+', false],
    ['a', 'a/#', false],
    ['#', 'x/y', true],
    ['+/b', 'a/b', true],
  ])('%s covers %s: %s', (p, f, want) => {
    expect(covers(l(p), l(f))).toBe(want);
  });

  it.each([
    ['a/#', 'a', true],
    ['a/+', 'a', false],
    ['a/+', '+/b', true],
    ['a/b', 'a/c', false],
    ['secret/#', 'sensors/+', false],
    ['sensors/private/#', 'sensors/+', true],
    ['a/b/c', 'a/#', true],
  ])('%s intersects %s: %s', (a, b, want) => {
    expect(intersects(l(a), l(b))).toBe(want);
    expect(intersects(l(b), l(a))).toBe(want);
  });

  it('validates patterns', () => {
    for (const ok of ['a', 'a/b', 'a/+', '+/+', '#', 'a/#', '']) expect(isTopicFilter(ok)).toBe(ok !== '');
    for (const bad of ['a/#/b', 'a+', 'a/b#', '#a']) expect(isTopicFilter(bad)).toBe(false);
  });
});

describe('anonymous namespace rules (first match wins, no match allows)', () => {
  const r = rules([
    { action: 'both', pattern: 'secret/#', allow: false },
    { action: 'publish', pattern: 'readonly/#', allow: false, clients: 'anonymous' },
    { action: 'subscribe', pattern: 'sensors/private/#', allow: false },
    { action: 'both', pattern: 'sensors/#', allow: true },
    { action: 'subscribe', pattern: 'feeds/public', allow: true },
    { action: 'both', pattern: 'feeds/#', allow: false },
  ]);
  const decide = (p: Principal, action: 'publish' | 'subscribe', topic: string) => anonymousRule(r, p, action, topic).decision;

  it.each([
    [anon, 'publish', 'secret/x', 'deny'],
    [anon, 'subscribe', 'secret/#', 'deny'],
    [alice, 'subscribe', 'secret/x', 'deny'],
    [anon, 'publish', 'readonly/x', 'deny'],
    [alice, 'publish', 'readonly/x', 'allow'], // the rule is for anonymous clients only
    [anon, 'subscribe', 'readonly/x', 'allow'],
    [anon, 'subscribe', 'sensors/private/x', 'deny'],
    [anon, 'subscribe', 'sensors/+', 'deny'], // would receive sensors/private
    [anon, 'subscribe', 'sensors/kitchen', 'allow'],
    [anon, 'publish', 'sensors/private/x', 'allow'], // the deny rule is for subscribe only
    [anon, 'subscribe', 'feeds/public', 'allow'],
    [anon, 'subscribe', 'feeds/+', 'deny'], // not covered by the allow, hits the deny
    [anon, 'publish', 'feeds/public', 'deny'],
    [anon, 'publish', 'anything/else', 'allow'],
    [anon, 'subscribe', 'anything/#', 'allow'],
  ] as const)('%o %s %s: %s', (p, action, topic, want) => {
    expect(decide(p, action, topic)).toBe(want);
  });

  it('names the rule that denied', () => {
    expect(anonymousRule(r, anon, 'publish', 'secret/x')).toEqual({ decision: 'deny', reason: 'denied by anonymousRules[0] (secret/#)' });
  });

  it('a last catch-all deny turns the default around', () => {
    const strict = rules([{ action: 'both', pattern: 'sensors/#', allow: true }, { action: 'both', pattern: '#', allow: false }]);
    expect(anonymousRule(strict, anon, 'publish', 'sensors/a').decision).toBe('allow');
    expect(anonymousRule(strict, anon, 'publish', 'other').decision).toBe('deny');
    expect(anonymousRule(strict, anon, 'subscribe', 'sensors/#').decision).toBe('allow');
  });

  it('applies only outside the chat namespaces, and only when MQTT_ANONYMOUS is on', () => {
    const strict = rules([{ action: 'both', pattern: '#', allow: false }]);
    expect(aclRule(alice, 'publish', 'chat/alice/phone/out', true, strict).decision).toBe('allow');
    expect(aclRule(alice, 'subscribe', 'chat/alice/in', true, strict).decision).toBe('allow');
    expect(aclRule(anon, 'publish', 'sensors/a', true, strict).decision).toBe('deny');
    expect(aclRule(anon, 'publish', 'sensors/a', false, []).decision).toBe('deny');
    expect(aclRule(anon, 'publish', 'sensors/a', true, []).decision).toBe('allow');
    expect(aclRule(anon, 'subscribe', '#', true, []).decision).toBe('deny'); // still: wildcard first level
  });

  it('is configured from JSON (MQTT_ANONYMOUS_RULES) and a bad pattern names the key', () => {
    const c = loadConfig({ MQTT_ANONYMOUS_RULES: '[{"action":"publish","pattern":"a/#","allow":false}]' }, {});
    expect(c.anonymousRules).toEqual([{ action: 'publish', pattern: 'a/#', allow: false, clients: 'any' }]);
    expect(() => loadConfig({ MQTT_ANONYMOUS_RULES: '[{"action":"publish","pattern":"a/#/b","allow":false}]' }, {})).toThrow(/anonymousRules\.0\.pattern/);
    expect(() => loadConfig({ MQTT_ANONYMOUS_RULES: 'not json' }, {})).toThrow(/anonymousRules/);
    expect(() => loadConfig({ LIMITS: '{"connection":{"messages":{"rate":-1}}}' }, {})).toThrow(/limits\.connection\.messages\.rate/);
    expect(loadConfig({ LIMITS: '{"connect":{"perIpPerMinute":5}}' }, {}).limits.connect).toEqual({ perIpPerMinute: 5, exemptLoopback: true });
    expect(loadConfig({}, {}).limits.connection.messages).toEqual({ rate: 100, burst: 2000 });
  });
});
