// LSNs compare as 64-bit numbers, never as strings; the status message reports them exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatLsn, maxLsn, parseLsn } from '../../../connectors/postgres/lsn.ts';
import { encodeStandbyStatus } from '../../../connectors/postgres/standby-status.ts';

test('parse and format round-trip every 64-bit LSN (property)', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (lsn) => {
      assert.equal(parseLsn(formatLsn(lsn)), lsn);
    }),
  );
  assert.equal(formatLsn(0x16b374d848n), '16/B374D848');
});

test('comparison is numeric where string comparison gets it wrong', () => {
  // As strings '9/0' > '10/0' and 'A/0' > '10/0'; zero-padded forms (as pg-logical-replication prints) are equal to unpadded ones.
  assert.ok(parseLsn('10/0') > parseLsn('9/0'));
  assert.ok(parseLsn('10/0') > parseLsn('A/0'));
  assert.ok(parseLsn('1/0') > parseLsn('0/FFFFFFFF'));
  assert.equal(parseLsn('00000016/B374D848'), parseLsn('16/B374D848'));
  assert.equal(maxLsn(parseLsn('1/0'), parseLsn('0/FFFFFFFF')), parseLsn('1/0'));
  for (const bad of ['', '12', '/1', 'G/1', '1/100000000']) assert.throws(() => parseLsn(bad), TypeError, bad);
});

test('standby status reports the LSN exactly (no +1), with the Postgres-epoch timestamp and reply flag', () => {
  const lsn = parseLsn('1/FFFFFFFF');
  const now = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
  const buf = encodeStandbyStatus(lsn, now, true);
  assert.equal(buf.length, 34);
  assert.equal(String.fromCharCode(buf[0]), 'r');
  assert.equal(buf.readBigUInt64BE(1), lsn, 'written');
  assert.equal(buf.readBigUInt64BE(9), lsn, 'flushed: becomes confirmed_flush_lsn');
  assert.equal(buf.readBigUInt64BE(17), lsn, 'applied');
  assert.equal(buf.readBigInt64BE(25), (BigInt(now) - BigInt(Date.UTC(2000, 0, 1))) * 1000n);
  assert.equal(buf[33], 1);
  assert.equal(encodeStandbyStatus(lsn, now, false)[33], 0);
});
