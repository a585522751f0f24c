/** The web client's pure view logic (web/src/model.ts, web/src/sha256.ts), in Node. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { assignableRoles, canPost, canRemove, describeConvEvent, parseUserList, presenceLine, previewText, tickStatus } from '../../web/src/model.ts';
import { sha256Fallback, toHex } from '../../web/src/sha256.ts';
import type { MessageView } from '../../client-lib/src/index.ts';

describe('tickStatus', () => {
  it('is sent, delivered, then read when every other member is past the seq (cumulative marks)', () => {
    expect(tickStatus(5, ['bob'], {})).toBe('sent');
    expect(tickStatus(5, ['bob'], { bob: { delivered: 5, read: 0 } })).toBe('delivered');
    expect(tickStatus(5, ['bob'], { bob: { delivered: 9, read: 7 } })).toBe('read');
    expect(tickStatus(5, ['bob'], { bob: { delivered: 4, read: 4 } })).toBe('sent');
  });
  it('in a group, needs every member; a read mark implies delivered', () => {
    const marks = { bob: { delivered: 0, read: 6 }, carol: { delivered: 6, read: 2 } };
    expect(tickStatus(6, ['bob', 'carol'], marks)).toBe('delivered');
    expect(tickStatus(6, ['bob', 'carol', 'dave'], marks)).toBe('sent');
    expect(tickStatus(2, ['bob', 'carol'], marks)).toBe('read');
  });
  it('is sent while the members are unknown (group info not loaded)', () => {
    expect(tickStatus(1, undefined, { bob: { delivered: 1, read: 1 } })).toBe('sent');
  });
});

describe('presenceLine', () => {
  const now = Date.UTC(2026, 0, 10, 12, 0);
  it('says online, or when the user was last seen', () => {
    expect(presenceLine(undefined, now)).toBe('');
    expect(presenceLine({ state: 'online' }, now)).toBe('online');
    expect(presenceLine({ state: 'offline' }, now)).toBe('offline');
    expect(presenceLine({ state: 'offline', last_seen: now - 60_000 }, now, 'en-GB')).toMatch(/^last seen today at \d\d:\d\d$/);
    expect(presenceLine({ state: 'offline', last_seen: now - 86_400_000 }, now, 'en-GB')).toMatch(/^last seen yesterday at /);
    expect(presenceLine({ state: 'offline', last_seen: now - 5 * 86_400_000 }, now, 'en-GB')).toMatch(/^last seen 5 Jan at /);
  });
});

describe('conversation lines', () => {
  it('describes conversation events from the reader’s point of view', () => {
    const event = (body: Record<string, unknown>) => describeConvEvent({ from: String(body.by ?? ''), body: body as never }, 'carol');
    expect(event({ event: 'created', by: 'alice', name: 'Team', kind: 'group' })).toBe('Alice created the group “Team”');
    expect(event({ event: 'member_added', by: 'alice', user: 'carol' })).toBe('Alice added you');
    expect(event({ event: 'member_removed', by: 'carol', user: 'bob' })).toBe('You removed bob');
    expect(event({ event: 'member_left', user: 'bob' })).toBe('Bob left');
    expect(event({ event: 'role_changed', by: 'alice', user: 'bob', role: 'admin' })).toBe('Alice made bob an admin');
    expect(event({ event: 'settings_changed', by: 'alice', announce_only: true })).toBe('Alice allowed only admins to post');
    expect(event({ event: 'settings_changed', by: 'alice', name: 'Crew' })).toBe('Alice renamed the conversation to “Crew”');
  });
  it('previews the last message with its author in groups', () => {
    const view = (over: Partial<MessageView>): MessageView => ({ conv: 'c', seq: 1, from: 'bob', ts: 0, body: {}, text: 'hi  there', deleted: false, reactions: {}, ...over });
    expect(previewText(view({}), 'alice', false)).toBe('hi there');
    expect(previewText(view({}), 'alice', true)).toBe('bob: hi there');
    expect(previewText(view({ from: 'alice' }), 'alice', false)).toBe('You: hi there');
    expect(previewText(view({ deleted: true, text: undefined }), 'alice', false)).toBe('🚫 Message deleted');
    expect(previewText(view({ media: ['m_1'], text: undefined }), 'alice', false)).toBe('📷 Photo');
    expect(previewText(undefined, 'alice', false)).toBe('');
  });
});

describe('roles', () => {
  it('only admins post in announce-only groups and channels', () => {
    expect(canPost('dm', false, undefined)).toBe(true);
    expect(canPost('group', false, 'member')).toBe(true);
    expect(canPost('group', true, 'member')).toBe(false);
    expect(canPost('group', true, 'admin')).toBe(true);
    expect(canPost('channel', false, 'member')).toBe(false);
    expect(canPost('channel', false, 'owner')).toBe(true);
    expect(canPost('group', false, undefined)).toBe(false);
  });
  it('follows the server’s rules for who may change or remove whom', () => {
    expect(assignableRoles('owner', 'admin')).toEqual(['owner', 'admin', 'member']);
    expect(assignableRoles('admin', 'member')).toEqual(['admin', 'member']);
    expect(assignableRoles('admin', 'owner')).toEqual([]);
    expect(assignableRoles('member', 'member')).toEqual([]);
    expect(canRemove('admin', 'member')).toBe(true);
    expect(canRemove('admin', 'admin')).toBe(false);
    expect(canRemove('owner', 'admin')).toBe(true);
  });
});

it('parseUserList splits, deduplicates, drops yourself and reports invalid names', () => {
  expect(parseUserList('bob, carol  @dave;bob alice', 'alice')).toEqual({ users: ['bob', 'carol', 'dave'], invalid: [] });
  expect(parseUserList('bob, no spaces!', 'alice')).toEqual({ users: ['bob', 'no'], invalid: ['spaces!'] });
});

it('the fallback SHA-256 (pages outside a secure context) matches node:crypto', () => {
  for (const size of [0, 1, 55, 56, 63, 64, 65, 1000, 100_003]) {
    const data = new Uint8Array(size).map((_, i) => (i * 31 + size) & 0xff);
    expect(toHex(sha256Fallback(data))).toBe(createHash('sha256').update(data).digest('hex'));
  }
});
