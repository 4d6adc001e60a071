import { describe, expect, it } from 'vitest';
import { QUIET_ZONE, qrShape } from './qr';

/** The dark squares of a path, as "x,y" keys. */
const squares = (path: string) => new Set([...path.matchAll(/M(\d+) (\d+)h1v1h-1z/g)].map((m) => `${m[1]},${m[2]}`));

describe('qrShape', () => {
  const url = 'otpauth://totp/omnihub:anna%40example.test?secret=JBSWY3DPEHPK3PXP&issuer=omnihub';

  it('draws a square code of a valid QR size with its quiet zone', () => {
    const { size, dark, path } = qrShape(url);
    const modules = size - 2 * QUIET_ZONE;
    // QR versions are 21, 25, … 177 modules wide.
    expect((modules - 21) % 4).toBe(0);
    expect(modules).toBeGreaterThanOrEqual(21);
    expect(squares(path).size).toBe(dark);
  });

  it('has the three finder patterns in their corners', () => {
    const { size, path } = qrShape(url);
    const on = squares(path);
    const n = size - 2 * QUIET_ZONE;
    const corners: [number, number][] = [
      [0, 0],
      [n - 7, 0],
      [0, n - 7],
    ];
    for (const [ox, oy] of corners) {
      for (let i = 0; i < 7; i++) {
        // The outer ring of each finder is dark, the ring inside it light, the 3×3 core dark.
        expect(on.has(`${ox + i + QUIET_ZONE},${oy + QUIET_ZONE}`)).toBe(true);
        expect(on.has(`${ox + QUIET_ZONE},${oy + i + QUIET_ZONE}`)).toBe(true);
      }
      expect(on.has(`${ox + 1 + QUIET_ZONE},${oy + 1 + QUIET_ZONE}`)).toBe(false);
      expect(on.has(`${ox + 3 + QUIET_ZONE},${oy + 3 + QUIET_ZONE}`)).toBe(true);
    }
    // Nothing is drawn in the quiet zone.
    for (const key of on) {
      const [x = -1, y = -1] = key.split(',').map(Number);
      expect(x >= QUIET_ZONE && y >= QUIET_ZONE && x < size - QUIET_ZONE && y < size - QUIET_ZONE).toBe(true);
    }
  });

  it('is the same for the same text and differs for another', () => {
    expect(qrShape(url).path).toBe(qrShape(url).path);
    expect(qrShape(url.replace('JBSW', 'KBSW')).path).not.toBe(qrShape(url).path);
  });

  it('grows with the text', () => {
    expect(qrShape('x'.repeat(300)).size).toBeGreaterThan(qrShape('x').size);
  });
});
