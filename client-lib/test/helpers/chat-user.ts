/** A registered user with a connected ChatClient and everything it has seen, for integration tests. */

import { ChatClient, type ChatClientOptions, type ReceivedMessage, type Receipt, type ConversationEvent } from '../../src/client.ts';
import type { ChatError } from '../../src/errors.ts';
import type { PresenceState } from '../../src/protocol.ts';
import { HttpAuth } from '../../src/token.ts';
import type { TypingChange } from '../../src/typing.ts';
import type { Registration } from './platform.ts';

export interface Observed {
  messages: ReceivedMessage[];
  receipts: Receipt[];
  conversations: ConversationEvent[];
  presence: PresenceState[];
  typing: TypingChange[];
  errors: ChatError[];
}

export function observe(client: ChatClient): Observed {
  const seen: Observed = { messages: [], receipts: [], conversations: [], presence: [], typing: [], errors: [] };
  client.on('message', (message) => seen.messages.push(message));
  client.on('receipt', (receipt) => seen.receipts.push(receipt));
  client.on('conversation', (event) => seen.conversations.push(event));
  client.on('presence', (presence) => seen.presence.push(presence));
  client.on('typing', (change) => seen.typing.push(change));
  client.on('error', (error) => seen.errors.push(error));
  return seen;
}

/** Quick reconnects so that tests do not wait for production backoff. */
export const TEST_BACKOFF = { initialMs: 100, maxMs: 1_000, factor: 2, jitter: 0.5 };

export function makeClient(url: string, httpUrl: string, registration: Registration, options: Partial<ChatClientOptions> = {}): ChatClient {
  const auth = HttpAuth.fromSession(httpUrl, registration);
  return new ChatClient({
    url,
    httpUrl,
    user: registration.user,
    device: registration.device,
    getToken: auth.getToken,
    refreshToken: auth.refreshToken,
    backoff: TEST_BACKOFF,
    rpcTimeoutMs: 10_000,
    receiptDelayMs: 50,
    ...options,
  });
}
