// Exporting query results as CSV (one row per sample) or JSON (the API's
// own answer), downloaded by the browser from a Blob.

/** Quotes a CSV field when it needs it (RFC 4180). */
function field(s) {
  s = String(s);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * CSV of a query result {resultType, result}: a header of the label names
 * (sorted, __name__ first) then "timestamp" and "value"; one row per sample,
 * timestamps in Unix seconds and values exactly as the API returned them.
 */
export function toCSV(data) {
  const { resultType, result } = data;
  if (resultType === 'scalar' || resultType === 'string') {
    return `timestamp,value\n${field(result[0])},${field(result[1])}\n`;
  }
  const names = new Set();
  for (const s of result) for (const k of Object.keys(s.metric)) names.add(k);
  const labels = [...names].sort((a, b) => (a === '__name__' ? -1 : b === '__name__' ? 1 : a < b ? -1 : a > b ? 1 : 0));
  const lines = [[...labels, 'timestamp', 'value'].map(field).join(',')];
  for (const s of result) {
    const prefix = labels.map((l) => field(s.metric[l] ?? ''));
    const samples = resultType === 'vector' ? [s.value] : s.values || [];
    for (const [t, v] of samples) lines.push([...prefix, field(t), field(v)].join(','));
  }
  return `${lines.join('\n')}\n`;
}

/** JSON of a query result, as the API's success envelope. */
export function toJSON(data) {
  const { __warnings, ...rest } = data;
  const out = { status: 'success', data: rest };
  if (__warnings) out.warnings = __warnings;
  return `${JSON.stringify(out, null, 2)}\n`;
}

/** Makes the browser download `text` as `filename`. */
export function download(filename, text, mime) {
  const blob = new Blob([text], { type: mime });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/** A file name from an expression: "rate_http_requests_total_5m.csv". */
export function fileName(expr, ext) {
  const base = expr.replace(/[^a-zA-Z0-9_]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 60) || 'result';
  return `${base}.${ext}`;
}
