export { PostgresStore } from './store.js';
