// The API client: a bearer token kept in sessionStorage (never a cookie, never in a URL), or,
// on the TLS listener, nothing at all when the browser's client certificate carries a role.
const token_key = 'certmate.token';

export const token = {
  get: () => sessionStorage.getItem(token_key),
  set: (t) => sessionStorage.setItem(token_key, t),
  clear: () => sessionStorage.removeItem(token_key),
};

// An error answer of the API: {error, message, code, field?} (docs/api.md "Errors").
export class api_error extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.field = body && body.field;
    this.body = body;
  }
}

let on_unauthorized = () => {};
export function set_unauthorized_handler(f) { on_unauthorized = f; }

function headers_for(extra) {
  const h = { ...extra };
  const t = token.get();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

// fetch() of a same-origin API path; JSON bodies are sent as JSON; an error answer throws api_error.
export async function request(path, { method = 'GET', body, headers = {}, raw = false, quiet401 = false } = {}) {
  const h = headers_for(headers);
  let payload = body;
  if (body !== undefined && typeof body !== 'string' && !(body instanceof Blob)) {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers: h, body: payload, cache: 'no-store', credentials: 'same-origin' });
  if (!res.ok) {
    let b = null;
    try { b = await res.json(); } catch { /* not JSON */ }
    if (res.status === 401 && !quiet401) on_unauthorized();
    throw new api_error(res.status, b);
  }
  if (raw) return res;
  const ct = res.headers.get('content-type') || '';
  return ct.includes('json') ? res.json() : res.text();
}

export const get = (path, opts) => request(path, opts);
export const post = (path, body, opts = {}) => request(path, { ...opts, method: 'POST', body: body ?? {} });
export const patch = (path, body) => request(path, { method: 'PATCH', body });

// A query string from an object, skipping empty values.
export function qs(o) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

export const cert_path = (id) => `/api/client-certs/${encodeURIComponent(id)}`;

// Fetches a file through the API (so the bearer header goes along) and hands it to the browser as a download.
export async function download(path, filename, opts = {}) {
  const res = await request(path, { ...opts, raw: true });
  const blob = await res.blob();
  const cd = res.headers.get('content-disposition') || '';
  const m = /filename="?([^";]+)"?/.exec(cd);
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = (m && m[1]) || filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
