/**
 * A clean install on every supported Node (issue 18, item 6): no package in the lockfile requires
 * a Node that package.json's `engines` admits but the package does not (npm warns EBADENGINE for
 * it, as it did for undici@8, `node >=22.19`, through testcontainers). Checked at the lowest
 * version of each LTS line `engines` admits. .ci/other-nodes.sh asks npm itself the same question
 * under Node 20, 22 and 24.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

type Version = [number, number, number];

const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8')) as {
  packages: Record<string, { version?: string; engines?: { node?: string } | string[]; optional?: boolean }>;
};
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } };

const cmp = (a: Version, b: Version) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

/**
 * Whether `v` satisfies an npm `engines` range, in the forms the lockfile holds: `>=14`, `>= 0.6`,
 * `^20.19.0`, `~1.2`, `14`, `6.*`, `0.8.x`, `>=16 || 14 >=14.17`, `^20.12||^22.13||>=24`.
 */
function satisfies(v: Version, range: string): boolean {
  return range.split('||').some((alternative) => {
    const comparators = alternative.trim().replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1').split(/\s+/).filter(Boolean);
    return comparators.every((c) => {
      const m = /^(>=|<=|>|<|=|\^|~)?v?(\d+|[x*])(?:\.(\d+|[x*]))?(?:\.(\d+|[x*]))?$/.exec(c);
      if (!m) throw new Error(`an engines range this test does not read: ${JSON.stringify(range)}`);
      const parts = [m[2], m[3], m[4]].map((p) => (p === undefined || p === 'x' || p === '*' ? null : Number(p)));
      const given = parts.findIndex((p) => p === null);
      const precision = given === -1 ? 3 : given; // how many leading numbers were given
      const low = parts.map((p) => p ?? 0) as Version;
      const op = m[1] ?? '';
      if (op === '' || op === '=') {
        if (precision === 0) return true; // *, x
        if (precision === 3) return cmp(v, low) === 0;
        return v.slice(0, precision).every((n, i) => n === low[i]);
      }
      if (op === '>=') return cmp(v, low) >= 0;
      if (op === '>') return precision === 3 ? cmp(v, low) > 0 : v.slice(0, precision).join('.') !== low.slice(0, precision).join('.') && cmp(v, low) > 0;
      if (op === '<') return cmp(v, low) < 0;
      if (op === '<=') return cmp(v, low) <= 0;
      const high: Version = op === '^' ? (low[0] > 0 ? [low[0] + 1, 0, 0] : low[1] > 0 ? [0, low[1] + 1, 0] : [0, 0, low[2] + 1]) : precision >= 2 ? [low[0], low[1] + 1, 0] : [low[0] + 1, 0, 0];
      return cmp(v, low) >= 0 && cmp(v, high) < 0;
    });
  });
}

test('the range reader reads npm ranges as npm does', () => {
  assert.equal(satisfies([22, 13, 0], '>=22.19.0'), false);
  assert.equal(satisfies([22, 19, 0], '>=22.19.0'), true);
  assert.equal(satisfies([20, 19, 0], '^20.19.0 || ^22.13.0 || >=24.0.0'), true);
  assert.equal(satisfies([21, 0, 0], '^20.19.0 || ^22.13.0 || >=24.0.0'), false);
  assert.equal(satisfies([22, 12, 0], '^20.12||^22.13||>=24.0'), false);
  assert.equal(satisfies([14, 17, 0], '>=16 || 14 >=14.17'), true);
  assert.equal(satisfies([15, 0, 0], '>=16 || 14 >=14.17'), false);
  assert.equal(satisfies([8, 1, 0], '6.* || 8.* || >= 10.*'), true);
  assert.equal(satisfies([9, 1, 0], '6.* || 8.* || >= 10.*'), false);
  assert.equal(satisfies([20, 0, 0], '>= 0.6'), true);
  assert.equal(satisfies([1, 3, 0], '~1.2'), false);
});

test('every package in the lockfile admits the lowest version of each Node line package.json supports', () => {
  // The lowest version of each alternative of `engines` (^20.19.0 || ^22.13.0 || >=24.0.0).
  const lowest = pkg.engines.node.split('||').map((alt) => {
    const m = /(\d+)\.(\d+)\.(\d+)/.exec(alt);
    assert.ok(m, `engines alternative ${alt} names a version`);
    return [Number(m[1]), Number(m[2]), Number(m[3])] as Version;
  });
  assert.deepEqual(lowest.map((v) => v[0]), [20, 22, 24], 'the LTS lines 20, 22 and 24');
  for (const v of lowest) assert.ok(satisfies(v, pkg.engines.node));
  const refusing: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    const range = !Array.isArray(entry.engines) ? entry.engines?.node : undefined;
    if (path === '' || range === undefined) continue;
    for (const v of lowest) if (!satisfies(v, range)) refusing.push(`${path.replace(/^.*node_modules\//, '')}@${entry.version} needs node ${range}, not ${v.join('.')}`);
  }
  assert.deepEqual(refusing, []);
});
