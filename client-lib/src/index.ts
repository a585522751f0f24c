/**
 * @mqtt-chat/client — typed chat SDK over MQTT for Node and browsers.
 *
 * Node: `import { ChatClient } from '@mqtt-chat/client'` and, for a persistent store,
 * `import { SqliteStore } from '@mqtt-chat/client/sqlite'`.
 * Browsers: the same entry (bundlers pick dist/browser.js) or dist/browser.js directly,
 * with `IndexedDbStore` for persistence.
 */

export { ChatClient } from './client.ts';
export type {
  ChatClientOptions,
  ChatEvents,
  ConversationEvent,
  HistoryPage,
  MessageSource,
  Receipt,
  ReceivedMessage,
  SendAck,
  SendOptions,
} from './client.ts';
export { ChatError, RETRYABLE_CODES, SERVER_ERROR_CODES, CLIENT_ERROR_CODES, chatErrorFromWire, isChatErrorCode } from './errors.ts';
export type { ChatErrorCode, ClientErrorCode, ServerErrorCode } from './errors.ts';
export { ConnectionStateMachine, InvalidTransitionError, nextConnectionState } from './connection-state.ts';
export type { ConnectionEvent, ConnectionState, StateChange } from './connection-state.ts';
export type { ConversationState } from './conversation-book.ts';
export { backoffDelay, DEFAULT_BACKOFF } from './backoff.ts';
export type { BackoffOptions } from './backoff.ts';
export { systemClock } from './clock.ts';
export type { Clock, TimerHandle } from './clock.ts';
export { TypedEmitter } from './emitter.ts';
export { newId } from './ids.ts';
export { foldMessages, messageAction } from './message-view.ts';
export type { MessageAction, MessageView } from './message-view.ts';
export { ConversationSequencer } from './sequencer.ts';
export type { AcceptResult, SeqRange } from './sequencer.ts';
export { TypingTracker, DEFAULT_TYPING } from './typing.ts';
export type { TypingChange, TypingOptions, TypingState } from './typing.ts';
export { HttpAuth, AuthHttpError, tokenExpiresAt } from './token.ts';
export type { AuthSession } from './token.ts';
export { MqttTransport, ConnectRefusedError } from './transport.ts';
export type { QoS, SubscribeGrant, Transport, TransportConnection, TransportHandlers, TransportOpenOptions } from './transport.ts';
export { MemoryStore } from './store/memory.ts';
export { emptyConversationRecord } from './store/types.ts';
export type {
  ConversationRecord,
  LocalStore,
  MemberReceipts,
  MessagePageQuery,
  OutboxEntry,
  SearchQuery,
  StoredMessage,
} from './store/types.ts';
export { IDEMPOTENT_METHODS, topics } from './protocol.ts';
export type {
  ChatMessage,
  ConversationKind,
  ConversationSummary,
  GroupInfo,
  JsonObject,
  JsonValue,
  MediaDownload,
  MediaRecord,
  MediaUploadTicket,
  MemberRole,
  PresenceState,
  Profile,
  ReceiptStatus,
  RpcMethod,
  RpcMethods,
  RpcParams,
  RpcResult,
  SendTarget,
} from './protocol.ts';
