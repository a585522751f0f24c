/**
 * RPC methods of DESIGN section 4, one function each behind the dispatcher in chat.ts.
 * Each validates its params (bad_request naming the field), checks membership and role,
 * and returns the result object.
 */
import { ChatError } from '../core/errors.ts';
import { params as p } from '../core/protocol.ts';
import { messageEvent } from '../core/events.ts';
import { groupTopic } from '../core/fanout.ts';
import type { Role } from '../core/store.ts';
import type { ChatService, Device } from './chat.ts';

export interface RpcContext {
  who: Device;
  chat: ChatService;
}

type Params = Record<string, unknown>;
export type RpcMethod = (ctx: RpcContext, params: Params) => Promise<unknown>;

async function requireMember(ctx: RpcContext, conv: string): Promise<Role> {
  const role = await ctx.chat.members.role(conv, ctx.who.user);
  if (role) return role;
  if (!(await ctx.chat.store.getConversation(conv))) throw new ChatError('not_found', `no conversation ${conv}`);
  throw new ChatError('not_member', `you are not a member of ${conv}`);
}

async function requireAdmin(ctx: RpcContext, conv: string): Promise<Role> {
  const role = await requireMember(ctx, conv);
  const c = await ctx.chat.store.getConversation(conv);
  if (c?.kind === 'dm') throw new ChatError('forbidden', 'a 1:1 conversation has no members to manage');
  if (role === 'member') throw new ChatError('forbidden', 'only owners and admins may do that');
  return role;
}

async function requireUsers(ctx: RpcContext, users: string[]): Promise<void> {
  const found = new Set(await ctx.chat.store.usersExist(users));
  const missing = users.filter((u) => !found.has(u));
  if (missing.length) throw new ChatError('not_found', `no such user: ${missing.slice(0, 5).join(', ')}`);
}

async function change(ctx: RpcContext, conv: string, c: Omit<Parameters<ChatService['store']['changeMembership']>[0], 'conv' | 'by' | 'now' | 'fanoutWriteMax'>): Promise<void> {
  const result = await ctx.chat.store.changeMembership({ conv, by: ctx.who.user, now: ctx.chat.clock.now(), fanoutWriteMax: ctx.chat.options.fanoutWriteMax, ...c });
  await ctx.chat.deliverConvEvents(conv, result.events, result.removed);
}

const conversations: RpcMethod = async (ctx) => {
  const list = await ctx.chat.store.listConversations(ctx.who.user);
  return {
    convs: list.map((c) => ({
      conv: c.conv,
      kind: c.kind,
      name: c.name,
      members: c.members,
      last_seq: c.last_seq,
      read_seq: c.read_seq,
      delivered_seq: c.delivered_seq,
      unread: c.unread,
      ...(c.peer ? { peer: c.peer } : {}),
      ...(c.fanout === 'read' ? { topic: groupTopic(c.conv) } : {}),
    })),
  };
};

const sync: RpcMethod = async (ctx, params) => {
  const seen = p.object(params, 'convs');
  const limit = p.limit(params);
  for (const [conv, seq] of Object.entries(seen)) {
    if (!Number.isInteger(seq) || (seq as number) < 0) throw new ChatError('bad_request', `params.convs.${conv} must be a seq`);
  }
  const mine = await ctx.chat.store.listConversations(ctx.who.user);
  const myIds = new Set(mine.map((c) => c.conv));
  const convs = [];
  for (const c of mine) {
    const after = (seen[c.conv] as number | undefined) ?? 0;
    if (after >= c.last_seq) continue;
    const rows = await ctx.chat.store.messagesAfter(c.conv, after, limit + 1);
    convs.push({ conv: c.conv, messages: rows.slice(0, limit).map(messageEvent), more: rows.length > limit });
  }
  // Conversations the client knows but no longer belongs to (removed, left).
  const gone = Object.keys(seen).filter((c) => !myIds.has(c));
  return gone.length ? { convs, gone } : { convs };
};

const history: RpcMethod = async (ctx, params) => {
  const conv = p.conv(params);
  const before = p.seq(params, 'before', true);
  const limit = p.limit(params);
  await requireMember(ctx, conv);
  const rows = await ctx.chat.store.messagesBefore(conv, before, limit + 1);
  const more = rows.length > limit;
  return { messages: (more ? rows.slice(1) : rows).map(messageEvent), more };
};

const groupCreate: RpcMethod = async (ctx, params) => {
  const name = p.string(params, 'name', { max: 128 })!;
  const members = p.users(params, 'members');
  const kind = params.kind ?? 'group';
  if (kind !== 'group' && kind !== 'channel') throw new ChatError('bad_request', 'params.kind must be "group" or "channel"');
  await requireUsers(ctx, members);
  const { conv, event } = await ctx.chat.store.createGroup({
    owner: ctx.who.user,
    name,
    members,
    kind,
    now: ctx.chat.clock.now(),
    fanoutWriteMax: ctx.chat.options.fanoutWriteMax,
  });
  await ctx.chat.deliverConvEvents(conv, [event], []);
  return { conv };
};

const groupAdd: RpcMethod = async (ctx, params) => {
  const conv = p.conv(params);
  const users = p.users(params, 'users');
  await requireAdmin(ctx, conv);
  await requireUsers(ctx, users);
  await change(ctx, conv, { add: users });
  return {};
};

const groupRemove: RpcMethod = async (ctx, params) => {
  const conv = p.conv(params);
  const users = p.users(params, 'users');
  const myRole = await requireAdmin(ctx, conv);
  const members = await ctx.chat.members.members(conv);
  for (const u of users) {
    const role = members.get(u);
    if (role === 'owner' && myRole !== 'owner') throw new ChatError('forbidden', 'only an owner may remove an owner');
    if (role === 'admin' && myRole !== 'owner' && u !== ctx.who.user) throw new ChatError('forbidden', 'only an owner may remove an admin');
  }
  await change(ctx, conv, { remove: users });
  return {};
};

const groupLeave: RpcMethod = async (ctx, params) => {
  const conv = p.conv(params);
  await requireMember(ctx, conv);
  const c = await ctx.chat.store.getConversation(conv);
  if (c?.kind === 'dm') throw new ChatError('forbidden', 'a 1:1 conversation cannot be left; block the user instead');
  await change(ctx, conv, { remove: [ctx.who.user] });
  return {};
};

const groupRole: RpcMethod = async (ctx, params) => {
  const conv = p.conv(params);
  const user = p.user(params, 'user');
  const role = params.role;
  if (role !== 'owner' && role !== 'admin' && role !== 'member') throw new ChatError('bad_request', 'params.role must be owner, admin or member');
  const myRole = await requireAdmin(ctx, conv);
  const target = await ctx.chat.members.role(conv, user);
  if (!target) throw new ChatError('not_found', `${user} is not a member of ${conv}`);
  if ((role === 'owner' || target === 'owner') && myRole !== 'owner') throw new ChatError('forbidden', 'only an owner may grant or take ownership');
  await change(ctx, conv, { role: { user, role } });
  return {};
};

const groupSettings: RpcMethod = async (ctx, params) => {
  const conv = p.conv(params);
  const name = p.string(params, 'name', { optional: true, max: 128 });
  const announceOnly = p.bool(params, 'announce_only');
  await requireAdmin(ctx, conv);
  await change(ctx, conv, { settings: { name, announce_only: announceOnly } });
  return {};
};

const groupInfo: RpcMethod = async (ctx, params) => {
  const conv = p.conv(params);
  await requireMember(ctx, conv);
  const c = (await ctx.chat.store.getConversation(conv))!;
  const members = await ctx.chat.store.getMembers(conv);
  return {
    conv,
    name: c.name,
    kind: c.kind,
    members,
    announce_only: c.announce_only,
    last_seq: c.last_seq,
    ...(c.fanout === 'read' ? { topic: groupTopic(conv) } : {}),
  };
};

const block: RpcMethod = async (ctx, params) => {
  const user = p.user(params, 'user');
  if (user === ctx.who.user) throw new ChatError('bad_request', 'you cannot block yourself');
  await requireUsers(ctx, [user]);
  await ctx.chat.store.block(ctx.who.user, user, ctx.chat.clock.now());
  ctx.chat.blocksChanged(ctx.who.user, user);
  return {};
};

const unblock: RpcMethod = async (ctx, params) => {
  const user = p.user(params, 'user');
  await requireUsers(ctx, [user]);
  await ctx.chat.store.unblock(ctx.who.user, user);
  ctx.chat.blocksChanged(ctx.who.user, user);
  return {};
};

async function profileOf(ctx: RpcContext, user: string): Promise<Record<string, unknown>> {
  const u = await ctx.chat.store.getUser(user);
  if (!u) throw new ChatError('not_found', `no user ${user}`);
  const own = user === ctx.who.user;
  const profile: Record<string, unknown> = { user: u.id, name: u.name, about: u.about, avatar: u.avatar };
  if (own) profile.hide_last_seen = u.hide_last_seen;
  if (own || !u.hide_last_seen) profile.last_seen = u.last_seen;
  return profile;
}

const profileGet: RpcMethod = async (ctx, params) => profileOf(ctx, params.user === undefined ? ctx.who.user : p.user(params, 'user'));

const profileSet: RpcMethod = async (ctx, params) => {
  const name = p.string(params, 'name', { optional: true, max: 128 });
  const about = p.string(params, 'about', { optional: true, max: 1024 });
  const avatar = p.string(params, 'avatar', { optional: true, max: 1024 });
  const hideLastSeen = p.bool(params, 'hide_last_seen');
  await ctx.chat.store.setProfile(ctx.who.user, { name, about, avatar, hide_last_seen: hideLastSeen });
  return profileOf(ctx, ctx.who.user);
};

export const rpcMethods: Record<string, RpcMethod> = {
  conversations,
  sync,
  history,
  'group.create': groupCreate,
  'group.add': groupAdd,
  'group.remove': groupRemove,
  'group.leave': groupLeave,
  'group.role': groupRole,
  'group.settings': groupSettings,
  'group.info': groupInfo,
  block,
  unblock,
  'profile.get': profileGet,
  'profile.set': profileSet,
};
