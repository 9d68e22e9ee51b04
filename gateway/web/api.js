// The HTTP API as the page uses it. The bearer token lives in sessionStorage only
// (never in a URL, never in localStorage): closing the tab forgets it.

const TOKEN_KEY = "sekisho.token";

export class ApiError extends Error {
  // body: the server's JSON error {error, message, message_ja}, or {} when there was none
  constructor(status, body = {}, retryAfter = null) {
    super(body.message || body.error || `HTTP ${status}`);
    this.status = status; // 0: the server could not be reached
    this.code = body.error || "";
    this.messages = { en: body.message || "", ja: body.message_ja || "" };
    this.allowed = Array.isArray(body.allowed) ? body.allowed : null; // unknown_policy
    this.retryAfter = retryAfter;
  }
}

let unauthorizedHandler = () => {};
let memoryToken = "";

/** Called with no arguments whenever the server answers 401 (token wrong or revoked). */
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // sessionStorage disabled: the token is kept in memory for this page only
  }
  memoryToken = value || "";
}

function bearer(explicit) {
  return explicit || token() || memoryToken;
}

function retryAfter(value) {
  if (!value) return null;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, Math.round(secs));
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.round((when - Date.now()) / 1000));
}

async function errorFrom(resp) {
  let body = {};
  try {
    body = await resp.json();
  } catch {
    body = {}; // not JSON: the status says enough
  }
  return new ApiError(resp.status, body || {}, retryAfter(resp.headers.get("Retry-After")));
}

async function send(method, path, { body, json, tokenOverride, raw = false, auth = true } = {}) {
  const headers = auth ? { Authorization: `Bearer ${bearer(tokenOverride)}` } : {};
  let payload = body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  }
  if (!raw) headers.Accept = "application/json";
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: payload, cache: "no-store",
                               credentials: "omit", redirect: "error" });
  } catch (err) {
    throw new ApiError(0, { error: "network", message: String(err && err.message ? err.message : err) });
  }
  if (resp.status === 401 && !tokenOverride && auth) {
    unauthorizedHandler();
  }
  if (!resp.ok) throw await errorFrom(resp);
  if (raw) return resp;
  if (resp.status === 204) return null;
  return resp.json();
}

/** Check a token: "admin", "submit", or throws ApiError (401: wrong token). */
export async function whoAmI(candidate) {
  try {
    await send("GET", "/v1/quarantine?limit=1", { tokenOverride: candidate });
    return "admin";
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) return "submit";
    throw err;
  }
}

/**
 * Upload one file as a job with XHR (fetch has no upload progress).
 * onProgress(fraction 0..1); resolves to the 202 body {job_id, state, status_url, result_url}.
 */
export function submitFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/v1/jobs?name=${encodeURIComponent(file.name)}`);
    xhr.setRequestHeader("Authorization", `Bearer ${bearer()}`);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "text";
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable && ev.total > 0) onProgress(ev.loaded / ev.total);
    });
    xhr.addEventListener("load", () => {
      let body = {};
      try {
        body = JSON.parse(xhr.responseText || "{}");
      } catch {
        body = {};
      }
      if (xhr.status === 202 || xhr.status === 200 || xhr.status === 201) {
        onProgress(1);
        resolve(body);
        return;
      }
      if (xhr.status === 401) unauthorizedHandler();
      reject(new ApiError(xhr.status, body || {},
                          retryAfter(xhr.getResponseHeader("Retry-After"))));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, { error: "network" })));
    xhr.addEventListener("abort", () => reject(new ApiError(0, { error: "aborted" })));
    xhr.send(file);
  });
}

export function jobStatus(id) {
  return send("GET", `/v1/jobs/${encodeURIComponent(id)}`);
}

/** Send the password of a held job (a password-protected zip, 7z or PDF); the job
 * object afterwards: still held (wrong password) or done. */
export function unlockJob(id, password) {
  return send("POST", `/v1/jobs/${encodeURIComponent(id)}/unlock`, { json: { password } });
}

/** The name in a Content-Disposition header (RFC 6266: filename* wins), or "". */
export function dispositionName(header) {
  if (!header) return "";
  const star = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(header);
  if (star) {
    try {
      return decodeURIComponent(star[2].trim().replace(/^"|"$/g, ""));
    } catch {
      // fall through to the plain parameter
    }
  }
  const plain = /filename\s*=\s*("((?:[^"\\]|\\.)*)"|[^;]+)/i.exec(header);
  if (!plain) return "";
  return plain[2] !== undefined ? plain[2].replace(/\\(.)/g, "$1") : plain[1].trim();
}

/** Download the result of a job: the browser saves it under the server's name. */
export async function downloadResult(id, fallbackName) {
  const resp = await send("GET", `/v1/jobs/${encodeURIComponent(id)}/result`, { raw: true });
  const blob = await resp.blob();
  const name = dispositionName(resp.headers.get("Content-Disposition")) || fallbackName;
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  return name;
}

export function listQuarantine({ state = "", origin = "", limit = 50, offset = 0 } = {}) {
  const q = new URLSearchParams();
  if (state) q.set("state", state);
  if (origin) q.set("origin", origin);
  q.set("limit", String(limit));
  q.set("offset", String(offset));
  return send("GET", `/v1/quarantine?${q}`);
}

export function quarantineEntry(id) {
  return send("GET", `/v1/quarantine/${encodeURIComponent(id)}`);
}

export function releaseEntry(id, reason, policy) {
  return send("POST", `/v1/quarantine/${encodeURIComponent(id)}/release`,
              { json: { reason, policy: policy || null } });
}

export function deleteEntry(id, reason) {
  return send("DELETE", `/v1/quarantine/${encodeURIComponent(id)}`, { json: { reason } });
}

// A PPAP link (#unlock/<job id>/<key>): mail recipients have no token; the key from
// their notice opens this one held file.

export function heldFile(id, key) {
  return send("GET", `/v1/unlock/${encodeURIComponent(id)}?key=${encodeURIComponent(key)}`,
              { auth: false });
}

export function unlockHeldFile(id, key, password) {
  return send("POST", `/v1/unlock/${encodeURIComponent(id)}`,
              { auth: false, json: { key, password } });
}
