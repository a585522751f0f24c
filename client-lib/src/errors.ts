/**
 * The one error type of the SDK. Every rejected promise and every `error` event carries a
 * `ChatError`; its `code` is one of a closed list so that apps can switch on it.
 *
 * Server codes are DESIGN section 4's closed list; `timeout` and `disconnected` are produced
 * by the client itself.
 */

/** Codes the server sends in `{"type":"error","code":...}` (DESIGN section 4). */
export const SERVER_ERROR_CODES = [
  'bad_request',
  'too_large',
  'not_member',
  'forbidden',
  'blocked',
  'rate_limited',
  'not_found',
  'internal',
] as const;

/** Codes produced on the client side. */
export const CLIENT_ERROR_CODES = ['timeout', 'disconnected'] as const;

export type ServerErrorCode = (typeof SERVER_ERROR_CODES)[number];
export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[number];
export type ChatErrorCode = ServerErrorCode | ClientErrorCode;

/**
 * Which codes are worth retrying unchanged, and why:
 * - `rate_limited`: the same request succeeds once the window has passed.
 * - `internal`: a server fault (database hiccup, restart); nothing was stored.
 * - `timeout`: no answer in time. For `send` the outbox retries by itself and the server
 *   deduplicates by id, so nothing doubles. For non-idempotent RPCs (group.create ...)
 *   the outcome is unknown: check before retrying.
 * - `disconnected`: the connection went away (or the client is closed). Outbox entries
 *   stay queued and are resent on the next connection.
 * Every other code describes the request itself (bad, too large, not allowed, not there)
 * and fails the same way again.
 */
export const RETRYABLE_CODES: ReadonlySet<ChatErrorCode> = new Set<ChatErrorCode>([
  'rate_limited',
  'internal',
  'timeout',
  'disconnected',
]);

export interface ChatErrorOptions {
  /** The request id (`send` id or RPC id) the error answers, when known. */
  ref?: string;
  cause?: unknown;
}

export class ChatError extends Error {
  override readonly name = 'ChatError';
  readonly code: ChatErrorCode;
  readonly ref: string | undefined;

  constructor(code: ChatErrorCode, message: string, options: ChatErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.ref = options.ref;
  }

  /** True when the same request may succeed later without being changed. */
  get retryable(): boolean {
    return RETRYABLE_CODES.has(this.code);
  }
}

export function isChatErrorCode(value: unknown): value is ChatErrorCode {
  return (
    typeof value === 'string' &&
    ((SERVER_ERROR_CODES as readonly string[]).includes(value) ||
      (CLIENT_ERROR_CODES as readonly string[]).includes(value))
  );
}

/**
 * Maps a wire `error` event to a ChatError: the single place where wire codes become SDK
 * errors. A code outside the closed list (a newer server) becomes `internal`, keeping the
 * original text in the message.
 */
export function chatErrorFromWire(event: { code: string; message?: string; ref?: string }): ChatError {
  const known = (SERVER_ERROR_CODES as readonly string[]).includes(event.code);
  const code: ChatErrorCode = known ? (event.code as ServerErrorCode) : 'internal';
  const text = event.message ?? event.code;
  const message = known ? text : `unknown server error code ${JSON.stringify(event.code)}: ${text}`;
  return new ChatError(code, message, event.ref === undefined ? {} : { ref: event.ref });
}
