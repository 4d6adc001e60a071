// The QR code of a text, drawn as an SVG path (see lib/qr.ts); loaded lazily where it is shown.
import { useMemo } from 'react';
import { qrShape } from '../lib/qr';

export default function QrCode({ text, label, px = 200 }: { text: string; label: string; px?: number }) {
  const { size, path } = useMemo(() => qrShape(text), [text]);
  return (
    <svg
      role="img"
      aria-label={label}
      data-testid="qr-code"
      width={px}
      height={px}
      viewBox={`0 0 ${size} ${size}`}
      shapeRendering="crispEdges"
    >
      <rect width={size} height={size} fill="#fff" />
      <path d={path} fill="#000" />
    </svg>
  );
}
