/**
 * The connection state machine (STYLE 11): every transition of the client's connection is
 * listed here and nowhere else.
 *
 *   idle ──open──▶ connecting ──connected──▶ online
 *                    │  ▲  │                   │
 *             failed │  │  └─rejected─▶ closed │ lost
 *                    ▼  │retry                 ▼
 *                  reconnecting ◀──────────────┘
 *
 *   any state ──close──▶ closed ──open──▶ connecting
 */

export type ConnectionState = 'idle' | 'connecting' | 'online' | 'reconnecting' | 'closed';

export type ConnectionEvent =
  /** connect() called. */
  | 'open'
  /** CONNACK accepted and the own topics subscribed. */
  | 'connected'
  /** A connect attempt failed in a way that may pass (network, timeout, server down). */
  | 'failed'
  /** The broker refused the credentials even after a token refresh: retrying is pointless. */
  | 'rejected'
  /** An established connection went away. */
  | 'lost'
  /** The backoff delay passed (or reconnectNow() was called). */
  | 'retry'
  /** close() called. */
  | 'close';

const TRANSITIONS: Readonly<Record<ConnectionState, Partial<Record<ConnectionEvent, ConnectionState>>>> = {
  idle: { open: 'connecting', close: 'closed' },
  connecting: { connected: 'online', failed: 'reconnecting', rejected: 'closed', close: 'closed' },
  online: { lost: 'reconnecting', close: 'closed' },
  reconnecting: { retry: 'connecting', close: 'closed' },
  closed: { open: 'connecting', close: 'closed' },
};

export class InvalidTransitionError extends Error {
  override readonly name = 'InvalidTransitionError';
  constructor(
    readonly from: ConnectionState,
    readonly event: ConnectionEvent,
  ) {
    super(`connection event "${event}" is not valid in state "${from}"`);
  }
}

/** The state after `event`, or undefined when the event is not valid in `state`. */
export function nextConnectionState(state: ConnectionState, event: ConnectionEvent): ConnectionState | undefined {
  return TRANSITIONS[state][event];
}

export interface StateChange {
  from: ConnectionState;
  to: ConnectionState;
  event: ConnectionEvent;
  /** Why, for `failed`, `lost` and `rejected`. */
  reason?: string;
}

/** Holds the current state; `apply` is the only way to change it. */
export class ConnectionStateMachine {
  #state: ConnectionState = 'idle';

  constructor(private readonly onChange: (change: StateChange) => void = () => {}) {}

  get state(): ConnectionState {
    return this.#state;
  }

  /** True when `event` is valid now. */
  can(event: ConnectionEvent): boolean {
    return nextConnectionState(this.#state, event) !== undefined;
  }

  /** Applies `event`; throws InvalidTransitionError when it is not valid in the current state. */
  apply(event: ConnectionEvent, reason?: string): StateChange {
    const from = this.#state;
    const to = nextConnectionState(from, event);
    if (to === undefined) throw new InvalidTransitionError(from, event);
    this.#state = to;
    const change: StateChange = reason === undefined ? { from, to, event } : { from, to, event, reason };
    this.onChange(change);
    return change;
  }
}
