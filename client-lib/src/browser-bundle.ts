/**
 * Entry of the browser bundle: esbuild turns it into dist/browser.js with MQTT.js inside.
 * Everything of the main entry plus the IndexedDB store. WebSocket URLs only
 * (`ws://host:port/mqtt`, `wss://...`).
 */

export * from './index.ts';
export { IndexedDbStore } from './store/indexeddb.ts';
export type { IndexedDbStoreOptions } from './store/indexeddb.ts';
