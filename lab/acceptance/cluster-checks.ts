/**
 * Transitional: lab/up.ts (another branch's file) still imports from here. It re-exports the
 * health checks only; delete this file once up.ts imports ./acceptance/checks/health.ts.
 */
export { CLUSTER_READY_CHECKS } from './checks/health.ts';
