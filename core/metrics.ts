import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one process; a fresh registry per platform so tests don't share. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    connections: new Gauge({ name: 'chat_mqtt_connections', help: 'Open MQTT connections', registers: [registry] }),
    usersOnline: new Gauge({ name: 'chat_users_online', help: 'Users with at least one connected device', registers: [registry] }),
    devicesOnline: new Gauge({ name: 'chat_devices_online', help: 'Connected devices', registers: [registry] }),
    messagesIn: new Counter({ name: 'chat_messages_in_total', help: 'Requests received on out topics', labelNames: ['type'], registers: [registry] }),
    messagesStored: new Counter({ name: 'chat_messages_stored_total', help: 'Messages committed', registers: [registry] }),
    deliveries: new Counter({ name: 'chat_deliveries_total', help: 'Publishes made to deliver stored messages', labelNames: ['mode'], registers: [registry] }),
    deliveriesPerMessage: new Histogram({ name: 'chat_deliveries_per_message', help: 'Publishes per stored message', buckets: [1, 2, 3, 10, 100, 1000, 10000], registers: [registry] }),
    fanoutSwitches: new Counter({ name: 'chat_fanout_switches_total', help: 'Groups that crossed FANOUT_WRITE_MAX, by the mode they switched to', labelNames: ['mode'], registers: [registry] }),
    errors: new Counter({ name: 'chat_request_errors_total', help: 'Requests answered with an error', labelNames: ['code'], registers: [registry] }),
    authFailures: new Counter({ name: 'chat_auth_failures_total', help: 'Refused logins and MQTT connects', labelNames: ['kind'], registers: [registry] }),
    aclDenials: new Counter({ name: 'chat_acl_denials_total', help: 'Refused subscribes and publishes', labelNames: ['action'], registers: [registry] }),
    storeLatency: new Histogram({ name: 'chat_store_commit_seconds', help: 'Time to commit one batch of messages', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] }),
    batchSize: new Histogram({ name: 'chat_commit_batch_size', help: 'Messages per group commit', buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500], registers: [registry] }),
    deadLetters: new Counter({ name: 'chat_dead_letters_total', help: 'Delivery jobs moved to the dead-letter store', registers: [registry] }),
    reclaims: new Counter({ name: 'chat_delivery_reclaims_total', help: 'Delivery jobs reclaimed from a dead consumer', registers: [registry] }),
    retries: new Counter({ name: 'chat_delivery_retries_total', help: 'Delivery job retries', registers: [registry] }),
  };
  return m;
}
export type Metrics = ReturnType<typeof createMetrics>;
