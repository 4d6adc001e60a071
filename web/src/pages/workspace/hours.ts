// Working hours typed as text, one day per line of the form: "09:00-13:00, 14:00-18:00".
export interface TimeRange {
  start: string;
  end: string;
}

const RANGE = /^([01]\d|2[0-3]):([0-5]\d)\s*[-–]\s*([01]\d|2[0-3]):([0-5]\d)$/;

export function formatDay(ranges: TimeRange[]): string {
  return ranges.map((r) => `${r.start}-${r.end}`).join(', ');
}

/** The ranges of one day, or null when a part is not "HH:MM-HH:MM" (the server checks order). */
export function parseDay(text: string): TimeRange[] | null {
  const parts = text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const out: TimeRange[] = [];
  for (const part of parts) {
    const m = RANGE.exec(part);
    if (!m) return null;
    out.push({ start: `${m[1]}:${m[2]}`, end: `${m[3]}:${m[4]}` });
  }
  return out;
}
