// A QR code as one SVG path: the matrix comes from `uqr`, each dark module becomes a unit square
// of the path, so the code is drawn by a React <svg> element (no markup strings, nothing the
// CSP has to allow). This module is loaded only by the second-factor enrolment screen.
import { encode } from 'uqr';

/** The four-module quiet zone scanners expect around a code. */
export const QUIET_ZONE = 4;

export interface QrShape {
  /** Width and height in modules, the quiet zone included. */
  size: number;
  /** SVG path data: one `M x y h1 v1 h-1 z` square per dark module. */
  path: string;
  /** Dark modules drawn. */
  dark: number;
}

/** Encodes `text` (medium error correction, which phone cameras read reliably off a screen). */
export function qrShape(text: string): QrShape {
  const { data } = encode(text, { ecc: 'M', border: 0 });
  const parts: string[] = [];
  data.forEach((row, y) =>
    row.forEach((on, x) => {
      if (on) parts.push(`M${x + QUIET_ZONE} ${y + QUIET_ZONE}h1v1h-1z`);
    }),
  );
  return { size: data.length + 2 * QUIET_ZONE, path: parts.join(''), dark: parts.length };
}
