import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { crc32c } from './crc32c.js';

const require = createRequire(import.meta.url);
// kafkajs's byte-at-a-time CRC-32C: an independent implementation to compare with.
const kafkajsCrc32c = require('kafkajs/src/protocol/recordBatch/crc32C') as (b: Buffer) => number;

describe('crc32c', () => {
  it('matches the published check values (RFC 3720 B.4 and the "123456789" check)', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(32, 0))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toBe(0x46dd794e);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)))).toBe(0x113fdb5c);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
  });

  it('agrees with a byte-at-a-time implementation on every length and offset, and sees one flipped bit', () => {
    const data = randomBytes(4096);
    // Up to 100 bytes: every remainder after the 16-byte steps, from every alignment.
    for (let len = 0; len < 100; len++) {
      for (const start of [0, 1, 3, 7]) {
        expect(crc32c(data, start, start + len)).toBe(kafkajsCrc32c(data.subarray(start, start + len)));
      }
    }
    expect(crc32c(data)).toBe(kafkajsCrc32c(data));
    const flipped = Buffer.from(data);
    flipped[1234]! ^= 0x10;
    expect(crc32c(flipped)).not.toBe(crc32c(data));
  });
});
