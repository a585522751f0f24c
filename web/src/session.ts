/**
 * Sign-in state of this browser: the token bundle of the HTTP API (DESIGN section 7), kept
 * in localStorage so that a reload stays signed in, and refreshed with POST
 * /v1/auth/refresh through the SDK's HttpAuth.
 *
 * Refresh tokens rotate, and the server revokes the whole device when an old one is used
 * again (broker/auth.ts). So a refresh is single-flight here, its result is saved at once,
 * and only one tab per device runs the client (TabLock below): two tabs refreshing with the
 * same token would end the session, and two MQTT connections with the same clientId would
 * keep taking each other over.
 */
import { HttpAuth, type AuthSession } from '@mqtt-chat/client';

const SESSION_KEY = 'mqtt-chat.session';

export function loadSession(): AuthSession | undefined {
  try {
    const value: unknown = JSON.parse(localStorage.getItem(SESSION_KEY) ?? 'null');
    if (typeof value !== 'object' || value === null) return undefined;
    const s = value as Partial<AuthSession>;
    if (typeof s.user !== 'string' || typeof s.device !== 'string' || typeof s.token !== 'string' || typeof s.refresh_token !== 'string') return undefined;
    return { user: s.user, device: s.device, token: s.token, refresh_token: s.refresh_token, expires_at: Number(s.expires_at) };
  } catch {
    return undefined;
  }
}

function saveSession(session: AuthSession): void {
  localStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function clearSession(): void {
  localStorage.removeItem(SESSION_KEY);
}

/**
 * A device id for a new sign-in: `web-` and 12 random characters. Each sign-in is a device
 * of its own (its own tokens, its own local store); crypto.getRandomValues works on plain
 * http too, where crypto.randomUUID does not.
 */
export function newDeviceId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `web-${Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('')}`;
}

/** The signed-in user: tokens for MQTT (ChatClient options) and for HTTP (media). */
export class Session {
  #auth: HttpAuth;
  #refreshing: Promise<string> | undefined;

  private constructor(
    readonly origin: string,
    auth: HttpAuth,
  ) {
    this.#auth = auth;
    saveSession(auth.session);
  }

  static async signIn(origin: string, mode: 'login' | 'register', user: string, password: string): Promise<Session> {
    const device = newDeviceId();
    const auth = mode === 'register' ? await HttpAuth.register(origin, user, password, device) : await HttpAuth.login(origin, user, password, device);
    return new Session(origin, auth);
  }

  static resume(origin: string): Session | undefined {
    const saved = loadSession();
    return saved ? new Session(origin, HttpAuth.fromSession(origin, saved)) : undefined;
  }

  get user(): string {
    return this.#auth.session.user;
  }

  get device(): string {
    return this.#auth.session.device;
  }

  /** The current access token (ChatClient `getToken`). */
  readonly token = (): string => this.#auth.session.token;

  /** A new access token (ChatClient `refreshToken`); concurrent callers share one request. */
  readonly refresh = (): Promise<string> => {
    this.#refreshing ??= this.#auth
      .refreshToken()
      .then((token) => {
        saveSession(this.#auth.session);
        return token;
      })
      .finally(() => {
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  };

  /** Revokes this device's tokens on the server (best effort) and forgets them here. */
  async signOut(): Promise<void> {
    try {
      await fetch(new URL(`/v1/devices/${encodeURIComponent(this.device)}`, this.origin), {
        method: 'DELETE',
        headers: { authorization: `Bearer ${this.token()}` },
      });
    } catch {
      // Offline: the tokens expire by themselves.
    }
    clearSession();
  }
}

/**
 * One active tab per device (Web Locks). A second tab waits and offers "Use here", which
 * asks the active tab (BroadcastChannel) to close its client and hand the lock over.
 * Without Web Locks (plain http on a LAN address is not a secure context) every tab runs.
 */
export class TabLock {
  #release: (() => void) | undefined;
  readonly #channel: BroadcastChannel | undefined;

  constructor(
    private readonly name: string,
    private readonly onTakenOver: () => void,
  ) {
    this.#channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(`${name}:takeover`) : undefined;
    this.#channel?.addEventListener('message', () => {
      if (this.#release) this.onTakenOver();
    });
  }

  static supported(): boolean {
    return typeof navigator !== 'undefined' && 'locks' in navigator && navigator.locks !== undefined;
  }

  /** Takes the lock if free; false when another tab holds it. */
  tryAcquire(): Promise<boolean> {
    if (!TabLock.supported()) return Promise.resolve(true);
    return this.#request({ ifAvailable: true });
  }

  /** Asks the holder to let go, then waits for the lock. */
  takeOver(): Promise<boolean> {
    if (!TabLock.supported()) return Promise.resolve(true);
    const acquired = this.#request({});
    this.#channel?.postMessage('take-over');
    return acquired;
  }

  #request(options: LockOptions): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      void navigator.locks.request(this.name, options, (lock) => {
        if (!lock) {
          resolve(false);
          return undefined;
        }
        resolve(true);
        return new Promise<void>((release) => (this.#release = release));
      });
    });
  }

  release(): void {
    this.#release?.();
    this.#release = undefined;
  }
}
