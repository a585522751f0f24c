/**
 * Access-token helpers. The SDK never verifies a token (the server does); it only reads the
 * JWT `exp` claim to refresh before expiry.
 */

function base64UrlDecode(segment: string): string {
  const base64 = segment.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(segment.length / 4) * 4, '=');
  const binary = atob(base64);
  const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The token's expiry in Unix ms, or undefined when it is not a JWT or has no `exp`. */
export function tokenExpiresAt(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[1] === undefined) return undefined;
  try {
    const claims: unknown = JSON.parse(base64UrlDecode(parts[1]));
    if (typeof claims !== 'object' || claims === null) return undefined;
    const exp = (claims as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * When to refresh a token that expires at `expiresAt`: `marginMs` before expiry; for a
 * short-lived token the margin shrinks to a fifth of its remaining life (a 10 s test token
 * is refreshed after 8 s, not at once). Never in the past.
 */
export function refreshDelay(expiresAt: number, now: number, marginMs: number): number {
  const remaining = expiresAt - now;
  if (remaining <= 0) return 0;
  return Math.floor(remaining - Math.min(marginMs, remaining * 0.2));
}

// ---------------------------------------------------------------------------------------
// HTTP auth (DESIGN section 7), so that apps need not write the three fetch calls.

export interface AuthSession {
  user: string;
  device: string;
  token: string;
  refresh_token: string;
  expires_at: number;
}

export class AuthHttpError extends Error {
  override readonly name = 'AuthHttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function postJson(url: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, json };
}

function toSession(status: number, json: unknown): AuthSession {
  const value = json as Partial<AuthSession> & { error?: { code?: string; message?: string } };
  if (status >= 200 && status < 300 && typeof value?.token === 'string' && typeof value.refresh_token === 'string') {
    return {
      user: String(value.user),
      device: String(value.device),
      token: value.token,
      refresh_token: value.refresh_token,
      expires_at: Number(value.expires_at),
    };
  }
  throw new AuthHttpError(status, value?.error?.code ?? 'internal', value?.error?.message ?? `auth request failed with HTTP ${status}`);
}

/**
 * Holds a user's tokens and refreshes them over HTTP. Pass `auth.getToken` and
 * `auth.refreshToken` to the ChatClient.
 */
export class HttpAuth {
  #session: AuthSession;

  private constructor(
    private readonly baseUrl: string,
    session: AuthSession,
  ) {
    this.#session = session;
  }

  static async register(baseUrl: string, user: string, password: string, device?: string): Promise<HttpAuth> {
    const { status, json } = await postJson(new URL('/v1/auth/register', baseUrl).href, { user, password, ...(device ? { device } : {}) });
    return new HttpAuth(baseUrl, toSession(status, json));
  }

  static async login(baseUrl: string, user: string, password: string, device?: string): Promise<HttpAuth> {
    const { status, json } = await postJson(new URL('/v1/auth/login', baseUrl).href, { user, password, ...(device ? { device } : {}) });
    return new HttpAuth(baseUrl, toSession(status, json));
  }

  /** Resumes from a session saved earlier (e.g. the refresh token in secure storage). */
  static fromSession(baseUrl: string, session: AuthSession): HttpAuth {
    return new HttpAuth(baseUrl, session);
  }

  get session(): AuthSession {
    return this.#session;
  }

  readonly getToken = async (): Promise<string> => this.#session.token;

  readonly refreshToken = async (): Promise<string> => {
    const { status, json } = await postJson(new URL('/v1/auth/refresh', this.baseUrl).href, {
      refresh_token: this.#session.refresh_token,
    });
    this.#session = toSession(status, json);
    return this.#session.token;
  };
}
