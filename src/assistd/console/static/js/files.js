// Files and vector stores: uploads with progress, ingestion status, store search.

import { del, fileBlob, fileInfo, get, listAll, post, upload } from "./api.js";
import { badge, bytes, clear, errorBox, h, when } from "./dom.js";
import { downloadLink } from "./render.js";

const PURPOSES = ["assistants", "vision", "user_data", "batch", "fine-tune"];

function uploader(onUploaded, { purposeChoice = true, id = "upload" } = {}) {
  const input = h("input", { type: "file", id: `${id}-file`, multiple: true });
  const purpose = h("select", { id: `${id}-purpose` }, PURPOSES.map((p) => h("option", { value: p }, p)));
  const progress = h("progress", { id: `${id}-progress`, max: 100, value: 0 });
  const label = h("span", { class: "muted", id: `${id}-progress-label` });
  const message = h("div", {});
  const button = h("button", { type: "submit", id: `${id}-button` }, "Upload");
  const form = h("form", { class: "uploader row", onsubmit: async (e) => {
    e.preventDefault();
    const chosen = [...input.files];
    if (!chosen.length) return;
    button.disabled = true;
    clear(message);
    try {
      for (const [i, file] of chosen.entries()) {
        const uploaded = await upload(file, purposeChoice ? purpose.value : "assistants", (f) => {
          const pct = Math.round(((i + f) / chosen.length) * 100);
          progress.value = pct;
          label.textContent = `${pct}% · ${file.name}`;
        });
        await onUploaded(uploaded);
      }
      input.value = "";
    } catch (err) {
      message.append(errorBox(err));
    } finally {
      button.disabled = false;
    }
  } }, input, purposeChoice ? purpose : null, button, progress, label, message);
  return form;
}

export async function filesPage(main) {
  const table = h("div", { id: "file-list" });
  async function load() {
    const files = (await get("/v1/files", { limit: 1000 })).data;
    clear(table, files.length ? h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["File", "Purpose", "Size", "Created", "Id", ""].map((c) => h("th", {}, c)))),
      h("tbody", {}, files.map((f) => h("tr", { dataset: { id: f.id } },
        h("td", {}, h("a", { href: `#/files/${f.id}` }, f.filename)), h("td", {}, f.purpose), h("td", {}, bytes(f.bytes)),
        h("td", {}, when(f.created_at)), h("td", {}, h("code", {}, f.id)),
        h("td", {}, downloadLink(f.id, "download"), " ",
          h("button", { type: "button", class: "link danger", onclick: async () => { if (confirm(`Delete ${f.filename}?`)) { await del(`/v1/files/${f.id}`); load(); } } }, "delete"))))))
      : h("p", { class: "muted" }, "No files yet."));
  }
  clear(main, h("div", { class: "page-head" }, h("h1", {}, "Files")), uploader(() => load()), table);
  await load();
}

// The text of a file whose bytes may not be downloaded (purpose "assistants"): its parsed text in a
// vector store that holds it (`store` in the URL, or the first store found with the file).
async function storeText(fileId, storeId) {
  const candidates = storeId ? [storeId] : (await listAll("/v1/vector_stores")).map((s) => s.id);
  for (const id of candidates) {
    try {
      const page = await get(`/v1/vector_stores/${id}/files/${fileId}/content`);
      return { text: page.data.map((p) => p.text).join("\n"), store: id };
    } catch {
      // not in this store
    }
  }
  return null;
}

export async function filePage(main, fileId, params) {
  const f = await fileInfo(fileId);
  const preview = h("div", { id: "file-preview" }, h("p", { class: "muted" }, "Loading content…"));
  const source = h("p", { class: "muted" });
  clear(main,
    h("div", { class: "page-head" }, h("h1", {}, f.filename), h("code", {}, f.id)),
    h("p", { class: "muted" }, `${f.purpose} · ${bytes(f.bytes)} · ${when(f.created_at)}`, " ", downloadLink(f.id, "download")),
    source, preview);
  let text;
  let blobError = null;
  const blob = await fileBlob(fileId).catch((err) => { blobError = err; return null; });
  if (blob) {
    const head = new Uint8Array(await blob.slice(0, 8).arrayBuffer());
    if (head[0] === 0x89 && head[1] === 0x50) {
      clear(preview, h("img", { class: "inline-image", src: URL.createObjectURL(blob), alt: f.filename }));
      return;
    }
    text = await blob.slice(0, 2_000_000).text();
    if (/[\u0000-\u0008]/.test(text.slice(0, 1000))) text = null;
  }
  if (!text) {
    const parsed = await storeText(fileId, params.get("store"));
    if (parsed) {
      text = parsed.text;
      clear(source, "Parsed text from vector store ", h("a", { href: `#/vector_stores/${parsed.store}` }, parsed.store), ".");
    }
  }
  if (!text) { clear(preview, blobError ? errorBox(blobError) : h("p", { class: "muted" }, "Binary file: download it to view.")); return; }
  const passage = params.get("passage");
  const at = passage ? text.indexOf(passage) : -1;
  if (at < 0) { clear(preview, h("pre", { class: "file-text" }, text)); return; }
  // The cited passage, highlighted from the start of the match.
  const end = Math.min(text.length, at + Math.max(passage.length, 800));
  const mark = h("mark", { id: "cited-passage" }, text.slice(at, end));
  clear(preview, h("pre", { class: "file-text" }, text.slice(0, at), mark, text.slice(end)));
  mark.scrollIntoView({ block: "center" });
}

export async function storesPage(main) {
  const list = h("div", { id: "store-list" });
  const name = h("input", { id: "store-name", placeholder: "name", required: true });
  const message = h("div", {});
  async function load() {
    const stores = await listAll("/v1/vector_stores");
    clear(list, stores.length ? h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["Store", "Status", "Files", "Size", "Created", "Id"].map((c) => h("th", {}, c)))),
      h("tbody", {}, stores.map((s) => h("tr", { dataset: { id: s.id } },
        h("td", {}, h("a", { href: `#/vector_stores/${s.id}` }, s.name || "(unnamed)")), h("td", {}, badge(s.status)),
        h("td", {}, `${s.file_counts.completed}/${s.file_counts.total}`), h("td", {}, bytes(s.usage_bytes)),
        h("td", {}, when(s.created_at)), h("td", {}, h("code", {}, s.id))))))
      : h("p", { class: "muted" }, "No vector stores yet."));
  }
  clear(main, h("div", { class: "page-head" }, h("h1", {}, "Vector stores")),
    h("form", { class: "row", onsubmit: async (e) => {
      e.preventDefault();
      try { const s = await post("/v1/vector_stores", { name: name.value }); location.hash = `#/vector_stores/${s.id}`; } catch (err) { clear(message, errorBox(err)); }
    } }, name, h("button", { type: "submit", id: "create-store" }, "Create store")), message, list);
  await load();
}

export async function storePage(main, storeId, isCurrent) {
  const store = await get(`/v1/vector_stores/${storeId}`);
  const files = h("div", { id: "store-files" });
  const summary = h("p", { class: "muted" });
  const results = h("div", { id: "search-results" });
  const query = h("input", { type: "search", id: "store-query", placeholder: "Search this store", required: true });

  async function load() {
    const [s, page] = await Promise.all([get(`/v1/vector_stores/${storeId}`), listAll(`/v1/vector_stores/${storeId}/files`)]);
    summary.textContent = `${s.status} · ${s.file_counts.completed} completed, ${s.file_counts.in_progress} in progress, ${s.file_counts.failed} failed · ${bytes(s.usage_bytes)}`;
    clear(files, page.length ? h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["File", "Ingestion", "Size", "Added", ""].map((c) => h("th", {}, c)))),
      h("tbody", {}, page.map((vf) => {
        const nameCell = h("a", { href: `#/files/${vf.id}` }, vf.id);
        fileInfo(vf.id).then((f) => { nameCell.textContent = f.filename; }).catch(() => {});
        return h("tr", { dataset: { id: vf.id, status: vf.status } },
          h("td", {}, nameCell), h("td", { class: "ingestion" }, badge(vf.status), vf.last_error ? h("span", { class: "error" }, ` ${vf.last_error.message}`) : null),
          h("td", {}, bytes(vf.usage_bytes)), h("td", {}, when(vf.created_at)),
          h("td", {}, h("button", { type: "button", class: "link danger", onclick: async () => { await del(`/v1/vector_stores/${storeId}/files/${vf.id}`); load(); } }, "remove")));
      }))) : h("p", { class: "muted" }, "No files in this store yet."));
    // Ingestion status: poll while anything is in progress and this page is still open.
    if (page.some((vf) => vf.status === "in_progress") && isCurrent()) setTimeout(() => { if (isCurrent()) load(); }, 1000);
  }

  async function search(e) {
    e.preventDefault();
    clear(results, h("p", { class: "muted" }, "Searching…"));
    try {
      const page = await post(`/v1/vector_stores/${storeId}/search`, { query: query.value, max_num_results: 10 });
      clear(results, page.data.length ? h("ol", { class: "results" }, page.data.map((r) => h("li", { class: "result" },
        h("div", {}, h("a", { href: `#/files/${r.file_id}?passage=${encodeURIComponent((r.content[0]?.text || "").slice(0, 200))}` }, r.filename), " ",
          h("span", { class: "score" }, `score ${r.score.toFixed(3)}`)),
        h("pre", { class: "passage" }, r.content.map((c) => c.text).join("\n")))))
        : h("p", { class: "muted" }, "No results."));
    } catch (err) {
      clear(results, errorBox(err));
    }
  }

  clear(main,
    h("div", { class: "page-head" }, h("h1", {}, store.name || "Vector store"), h("code", {}, store.id)), summary,
    h("h2", {}, "Add files"),
    uploader(async (f) => { await post(`/v1/vector_stores/${storeId}/files`, { file_id: f.id }); await load(); }, { purposeChoice: false, id: "store-upload" }),
    h("h2", {}, "Files"), files,
    h("h2", {}, "Search"),
    h("form", { class: "row", id: "store-search", onsubmit: search }, query, h("button", { type: "submit" }, "Search")),
    results);
  await load();
}
