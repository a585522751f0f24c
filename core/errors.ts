/**
 * One error type with stable codes (DESIGN section 4), mapped to the wire and to HTTP
 * in one place each. Retryable codes: `rate_limited` (after retry_after_ms) and
 * `internal` (a transient server fault); every other code is final for that request.
 */
export const errorCodes = [
  'bad_request',
  'too_large',
  'not_member',
  'forbidden',
  'blocked',
  'rate_limited',
  'not_found',
  'internal',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

export class ChatError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: { retryAfterMs?: number; status?: number } = {},
  ) {
    super(message);
    this.name = 'ChatError';
  }
  get retryable(): boolean {
    return this.code === 'rate_limited' || this.code === 'internal';
  }
}

const httpStatus: Record<ErrorCode, number> = {
  bad_request: 400,
  too_large: 413,
  not_member: 403,
  forbidden: 403,
  blocked: 403,
  rate_limited: 429,
  not_found: 404,
  internal: 500,
};

export function toChatError(err: unknown): ChatError {
  if (err instanceof ChatError) return err;
  return new ChatError('internal', 'internal error');
}

export function httpStatusOf(err: ChatError): number {
  return err.details.status ?? httpStatus[err.code];
}

/** The `error` event of DESIGN section 4. */
export function errorEvent(err: ChatError, ref?: string): Record<string, unknown> {
  const event: Record<string, unknown> = { type: 'error', code: err.code, message: err.message };
  if (ref !== undefined) event.ref = ref;
  if (err.details.retryAfterMs !== undefined) event.retry_after_ms = err.details.retryAfterMs;
  return event;
}
