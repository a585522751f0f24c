/**
 * The HTTP calls the web client makes itself: the media routes (docs/media.md). Bearer
 * token from the session; a 401 refreshes the token once and repeats the request.
 */
import type { Session } from './session.ts';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function errorOf(response: Response): Promise<ApiError> {
  let code = 'internal';
  let message = `HTTP ${response.status}`;
  try {
    const json = (await response.json()) as { error?: { code?: string; message?: string } };
    code = json.error?.code ?? code;
    message = json.error?.message ?? message;
  } catch {
    // not JSON
  }
  return new ApiError(response.status, code, message);
}

/** fetch with the bearer token; retried once with a fresh token after a 401. */
export async function authedFetch(session: Session, path: string, init: RequestInit = {}): Promise<Response> {
  const attempt = (token: string) =>
    fetch(new URL(path, session.origin), { ...init, headers: { ...(init.headers as Record<string, string> | undefined), authorization: `Bearer ${token}` } });
  let response = await attempt(session.token());
  if (response.status === 401) response = await attempt(await session.refresh());
  return response;
}

/** A JSON request; non-2xx answers throw ApiError with the server's code. */
export async function apiJson<T>(session: Session, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'content-type': 'application/json' };
  }
  const response = await authedFetch(session, path, init);
  if (!response.ok) throw await errorOf(response);
  return (await response.json()) as T;
}

export { errorOf };
