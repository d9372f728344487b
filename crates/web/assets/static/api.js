// The HTTP API client. Every URL is relative to the UI home, so the UI works
// unchanged under --web.route-prefix and behind a reverse proxy.

/** An API failure: `message` is Prometheus's error text, `type` its errorType. */
export class ApiError extends Error {
  constructor(message, type, status) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

/**
 * Calls api/v1/<path> with `params` (object; array values repeat the key).
 * Long parameter sets are POSTed as a form. Resolves to the response's `data`
 * (with `warnings` attached when present).
 */
export async function api(path, params = {}, { signal } = {}) {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => body.append(k, x));
    else body.append(k, v);
  }
  const qs = body.toString();
  const url = `api/v1/${path}`;
  let resp;
  try {
    resp = qs.length > 1500
      ? await fetch(url, { method: 'POST', body, signal, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } })
      : await fetch(qs ? `${url}?${qs}` : url, { signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(`cannot reach the server: ${e.message}`, 'network', 0);
  }
  let json;
  try {
    json = await resp.json();
  } catch (e) {
    throw new ApiError(`unexpected response (HTTP ${resp.status})`, 'internal', resp.status);
  }
  if (json.status !== 'success') {
    throw new ApiError(json.error || `HTTP ${resp.status}`, json.errorType || 'internal', resp.status);
  }
  const data = json.data;
  if (json.warnings && data && typeof data === 'object') data.__warnings = json.warnings;
  return data;
}

/** Small per-key cache with expiry for autocomplete look-ups. */
const cache = new Map();
export function cached(key, ttlMs, fn) {
  const hit = cache.get(key);
  const now = Date.now();
  if (hit && now - hit.at < ttlMs) return hit.p;
  const p = fn().catch((e) => {
    cache.delete(key);
    throw e;
  });
  cache.set(key, { at: now, p });
  return p;
}
