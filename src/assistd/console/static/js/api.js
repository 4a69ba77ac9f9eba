// Talking to assistd: the key (sessionStorage), JSON calls, SSE streams, uploads with progress, file bytes.

const KEY = "assistd.apiKey";

export const getKey = () => sessionStorage.getItem(KEY);
export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.error = error;
  }
}

function authHeaders(extra = {}, key = getKey()) {
  const headers = { ...extra };
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

async function toError(res) {
  let error = { message: `HTTP ${res.status} ${res.statusText}` };
  try {
    const body = await res.json();
    if (body && body.error) error = body.error;
  } catch {
    // not JSON: keep the status line
  }
  const err = new ApiError(res.status, error);
  if (res.status === 401) window.dispatchEvent(new CustomEvent("assistd:unauthorized", { detail: err }));
  return err;
}

// `query`: an object, or an array of [name, value] pairs (for repeated names such as include[]).
export function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  const pairs = Array.isArray(query) ? query : Object.entries(query);
  for (const [k, v] of pairs) if (v !== undefined && v !== null && v !== "") params.append(k, v);
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

export async function api(method, path, { body, query, key } = {}) {
  const init = { method, headers: authHeaders(body === undefined ? {} : { "content-type": "application/json" }, key) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(withQuery(path, query), init);
  if (!res.ok) throw await toError(res);
  return res.json();
}

export const get = (path, query) => api("GET", path, { query });
export const post = (path, body, query) => api("POST", path, { body, query });
export const del = (path) => api("DELETE", path);

// POST with stream=true; yields {event, data} for each Server-Sent Event until `done`.
export async function* stream(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: authHeaders({ "content-type": "application/json", accept: "text/event-stream" }),
    body: JSON.stringify({ ...body, stream: true }),
  });
  if (!res.ok) throw await toError(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const raw = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of raw.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (!data.length) continue; // a keep-alive comment
      if (event === "done") return;
      yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

// POST /v1/files with XMLHttpRequest, for its upload progress events: onProgress(fraction 0..1).
export function upload(file, purpose, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/files");
    const key = getKey();
    if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) {
        if (onProgress) onProgress(1);
        resolve(body);
      } else {
        reject(new ApiError(xhr.status, (body && body.error) || { message: `HTTP ${xhr.status}` }));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, { message: "The upload failed (network error)." }));
    const form = new FormData();
    form.append("purpose", purpose);
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

// File objects and bytes, fetched once per page load (bytes need the key, so they become blob: URLs).
const infos = new Map();
const blobs = new Map();

export function fileInfo(id) {
  if (!infos.has(id)) infos.set(id, get(`/v1/files/${encodeURIComponent(id)}`).catch((e) => { infos.delete(id); throw e; }));
  return infos.get(id);
}

export function fileBlob(id) {
  if (!blobs.has(id)) {
    const p = fetch(`/v1/files/${encodeURIComponent(id)}/content`, { headers: authHeaders() }).then(async (res) => {
      if (!res.ok) throw await toError(res);
      return res.blob();
    });
    blobs.set(id, p.catch((e) => { blobs.delete(id); throw e; }));
  }
  return blobs.get(id);
}

export async function fileURL(id) {
  return URL.createObjectURL(await fileBlob(id));
}

export async function download(id, filename) {
  const url = await fileURL(id);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename || id;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// Every page of a list endpoint (for the small lists the forms offer: assistants, stores).
export async function listAll(path, query = {}, max = 1000) {
  const out = [];
  let after;
  while (out.length < max) {
    const page = await get(path, { limit: 100, ...query, after });
    out.push(...page.data);
    if (!page.has_more || !page.last_id) break;
    after = page.last_id;
  }
  return out;
}
