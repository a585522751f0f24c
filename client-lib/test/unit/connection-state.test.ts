import { describe, expect, it } from 'vitest';
import {
  ConnectionStateMachine,
  InvalidTransitionError,
  nextConnectionState,
  type ConnectionEvent,
  type ConnectionState,
  type StateChange,
} from '../../src/connection-state.ts';

const STATES: ConnectionState[] = ['idle', 'connecting', 'online', 'reconnecting', 'closed'];
const EVENTS: ConnectionEvent[] = ['open', 'connected', 'failed', 'rejected', 'lost', 'retry', 'close'];

describe('connection state machine', () => {
  it('allows exactly the documented transitions', () => {
    const allowed: Record<string, ConnectionState> = {
      'idle+open': 'connecting',
      'idle+close': 'closed',
      'connecting+connected': 'online',
      'connecting+failed': 'reconnecting',
      'connecting+rejected': 'closed',
      'connecting+close': 'closed',
      'online+lost': 'reconnecting',
      'online+close': 'closed',
      'reconnecting+retry': 'connecting',
      'reconnecting+close': 'closed',
      'closed+open': 'connecting',
      'closed+close': 'closed',
    };
    for (const state of STATES) {
      for (const event of EVENTS) {
        expect(nextConnectionState(state, event), `${state} + ${event}`).toBe(allowed[`${state}+${event}`]);
      }
    }
  });

  it('walks a connect, drop, reconnect, close life and reports each change', () => {
    const changes: StateChange[] = [];
    const machine = new ConnectionStateMachine((change) => changes.push(change));
    expect(machine.state).toBe('idle');
    machine.apply('open');
    machine.apply('failed', 'ECONNREFUSED');
    machine.apply('retry');
    machine.apply('connected');
    machine.apply('lost', 'keepalive timeout');
    machine.apply('retry');
    machine.apply('connected');
    machine.apply('close');
    expect(changes.map((change) => `${change.from}>${change.to}`)).toEqual([
      'idle>connecting',
      'connecting>reconnecting',
      'reconnecting>connecting',
      'connecting>online',
      'online>reconnecting',
      'reconnecting>connecting',
      'connecting>online',
      'online>closed',
    ]);
    expect(changes[1]).toMatchObject({ event: 'failed', reason: 'ECONNREFUSED' });
    expect(machine.state).toBe('closed');
  });

  it('rejects an invalid event without changing state', () => {
    const changes: StateChange[] = [];
    const machine = new ConnectionStateMachine((change) => changes.push(change));
    machine.apply('open');
    expect(machine.can('lost')).toBe(false);
    expect(() => machine.apply('lost')).toThrow(InvalidTransitionError);
    expect(machine.state).toBe('connecting');
    expect(changes).toHaveLength(1);
  });
});
