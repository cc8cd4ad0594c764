/**
 * The house as drawn in docs/DESIGN.md ("Floors and rooms"), checked in CI (`npm run check:imports`):
 * no import cycle anywhere (type-only imports included), and no room imports a floor above it.
 */
const APP = '^services/(service|pipeline|logger)\\.ts$|^services/(config|cli|demo|metrics)/';
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'An import cycle: cut it with an interface owned by the lower side.', from: {}, to: { circular: true } },
    {
      name: 'core-is-the-floor', severity: 'error',
      comment: 'core/ (errors, JSON, messages, paths, selectors, filters, deltas, wire text) imports nothing of tidewire above it.',
      from: { path: '^core/' }, to: { path: '^(services|connectors|client|dashboard|bench|test)/' },
    },
    {
      name: 'client-on-the-floor-only', severity: 'error',
      comment: 'The client SDK runs in browsers: it may use core/ and itself, never server code.',
      from: { path: '^client/' }, to: { path: '^(services|connectors|dashboard|bench|test)/' },
    },
    {
      name: 'dashboard-on-the-client', severity: 'error',
      comment: 'The dashboard is a browser app: the client SDK and the floor only.',
      from: { path: '^dashboard/' }, to: { path: '^(services|connectors|bench|test)/' },
    },
    {
      name: 'connectors-below-the-app', severity: 'error',
      comment: 'Connectors use the floor (core/, including the ingest seam core/ingest.ts) and their own mapping; the app layer wires them.',
      from: { path: '^connectors/' }, to: { path: '^(services|client)/' },
    },
    {
      name: 'one-connector-does-not-know-another', severity: 'error',
      from: { path: '^connectors/(postgres|kafka)/' }, to: { path: '^connectors/(postgres|kafka)/', pathNot: '^connectors/$1/' },
    },
    {
      name: 'topic-state-on-the-floor', severity: 'error',
      comment: 'Topic state (services/topics) knows only the floor.',
      from: { path: '^services/topics/' }, to: { path: '^(services/(?!topics/)|connectors/|client/)' },
    },
    {
      name: 'state-store-on-the-floor', severity: 'error',
      comment: 'The durable state store (services/state) knows only the floor.',
      from: { path: '^services/state/' }, to: { path: '^(services/(?!state/)|connectors/|client/)' },
    },
    {
      name: 'security-below-distribution', severity: 'error',
      comment: 'Security decides what a session sees; it never imports the distribution service.',
      from: { path: '^services/security/' }, to: { path: '^(services/(distribution|handoff)/|connectors/|client/)|' + APP },
    },
    {
      name: 'handoff-below-distribution', severity: 'error',
      from: { path: '^services/handoff/' }, to: { path: '^(services/(distribution|security)/|connectors/|client/)|' + APP },
    },
    {
      name: 'distribution-below-the-app', severity: 'error',
      comment: 'Distribution owns its options and ports; only the app layer knows config, sources and metrics.',
      from: { path: '^services/distribution/' }, to: { path: '^(connectors/|client/)|' + APP },
    },
    {
      name: 'nothing-imports-tests-or-bench', severity: 'error',
      from: { path: '^(core|client|connectors|services)/' }, to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.tsx', '.js', '.mjs', '.json'] },
  },
};
