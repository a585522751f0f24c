/**
 * Pure decisions of the status service (STYLE 7): what a last will on a presence topic
 * becomes, what a typing publish may say, and what the retained presence state shows.
 * They take data and return data; presence.ts and the broker hooks apply them.
 */
import type { ConnectPacket } from 'aedes';
import { parseClientId } from './acl.ts';

export type Will = NonNullable<ConnectPacket['will']>;

export type WillDecision =
  /** Not a presence will: aedes keeps it, and the ACL checks it when it is published. */
  | { verdict: 'kept'; will: Will }
  /** A will on the client's own presence topic: replaced by the server's own announcement. */
  | { verdict: 'replaced'; will: undefined; claimed: unknown }
  /** A will that claims someone else's presence (or presence while anonymous): removed. */
  | { verdict: 'refused'; will: undefined; reason: string };

/**
 * A last will, decided at CONNECT, before aedes stores it (DESIGN section 4: "Clients set
 * their last will on presence/{userId}; the server is authoritative for presence").
 *
 * The server announces every disconnect itself, debounced and with `last_seen`
 * (presence.ts), so a presence will is never published as the client wrote it: one on
 * the client's own topic is accepted and removed (whatever it says - `online` included -
 * the announcement made in its place is the server's); one on another user's topic is
 * removed as a lie. Removing it at CONNECT rather than at close means it is never
 * persisted either, so no broker can publish it later for a dead node.
 */
export function decideWill(clientId: string, will: Will): WillDecision {
  const levels = will.topic.split('/');
  if (levels[0] !== 'presence') return { verdict: 'kept', will };
  const id = parseClientId(clientId);
  if (!id) return { verdict: 'refused', will: undefined, reason: 'presence will from a client that is not {user}:{device}' };
  if (levels.length !== 2 || levels[1] !== id.user) {
    return { verdict: 'refused', will: undefined, reason: `will on ${will.topic}: another user's presence` };
  }
  let claimed: unknown;
  try {
    claimed = JSON.parse(Buffer.from(will.payload).toString('utf8'));
  } catch {
    claimed = null;
  }
  return { verdict: 'replaced', will: undefined, claimed };
}

export type TypingState = 'typing' | 'idle';

/** Largest typing payload read; anything bigger is dropped unread. */
export const maxTypingBytes = 1024;

/**
 * A typing publish on typing/{conv} by `user` (a member: the ACL checked that). Returns
 * the state to forward, or why it is dropped: not JSON, an unknown state, or a `user`
 * that is not the publisher.
 */
export function parseTyping(user: string, payload: Buffer): { state: TypingState } | { drop: string } {
  if (payload.length > maxTypingBytes) return { drop: 'too large' };
  let p: unknown;
  try {
    p = JSON.parse(payload.toString('utf8'));
  } catch {
    return { drop: 'not JSON' };
  }
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return { drop: 'not an object' };
  const o = p as { user?: unknown; state?: unknown };
  if (o.user !== user) return { drop: 'user is not the publisher' };
  if (o.state !== 'typing' && o.state !== 'idle') return { drop: 'unknown state' };
  return { state: o.state };
}

export interface PresenceState {
  state: 'online' | 'offline';
  last_seen: number | null;
  devices: number;
}

/** The retained payload of presence/{user}: last seen hidden when the user asked for it. */
export function presencePayload(s: PresenceState, hideLastSeen: boolean): PresenceState {
  return { state: s.state, last_seen: hideLastSeen ? null : s.last_seen, devices: s.devices };
}
