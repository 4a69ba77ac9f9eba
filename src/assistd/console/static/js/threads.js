// Threads: the project's threads (admin endpoint), searchable; one thread's messages, newest page
// first with "load older", and its runs as timelines of steps.

import { get } from "./api.js";
import { clear, debounce, errorBox, h, when } from "./dom.js";
import { renderMessage, renderRun, runSteps } from "./render.js";

const PAGE = 50;

export async function threadsPage(main, params) {
  const q = h("input", { type: "search", id: "thread-search", placeholder: "Search by id or metadata value", value: params.get("q") || "" });
  const table = h("div", { id: "thread-list" });
  const pager = h("div", { class: "pager" });
  let cursor = {};

  async function load() {
    try {
      const page = await get("/admin/v1/threads", { limit: PAGE, q: q.value.trim(), ...cursor });
      clear(table, page.data.length ? h("table", { class: "list" },
        h("thead", {}, h("tr", {}, ["Thread", "Created", "Metadata"].map((c) => h("th", {}, c)))),
        h("tbody", {}, page.data.map((t) => h("tr", { dataset: { id: t.id } },
          h("td", {}, h("a", { href: `#/threads/${t.id}` }, t.id)),
          h("td", {}, when(t.created_at)),
          h("td", {}, Object.entries(t.metadata).map(([k, v]) => h("span", { class: "tag" }, `${k}: ${v}`)))))))
        : h("p", { class: "muted" }, q.value ? "No thread matches." : "No threads yet."));
      const newer = cursor.after || (cursor.before && page.has_more);
      const older = cursor.before ? true : page.has_more;
      clear(pager,
        h("button", { type: "button", disabled: !newer, onclick: () => { cursor = { before: page.first_id }; load(); } }, "← Newer"),
        h("button", { type: "button", disabled: !older || !page.last_id, onclick: () => { cursor = { after: page.last_id }; load(); } }, "Older →"));
    } catch (err) {
      clear(table, errorBox(err));
    }
  }
  q.addEventListener("input", debounce(() => { cursor = {}; load(); }, 250));
  clear(main, h("div", { class: "page-head" }, h("h1", {}, "Threads"), q), table, pager);
  await load();
}

export async function threadPage(main, threadId) {
  const t0 = performance.now();
  clear(main, h("p", { class: "muted" }, "Loading thread…"));
  const [thread, page] = await Promise.all([
    get(`/v1/threads/${threadId}`),
    get(`/v1/threads/${threadId}/messages`, { limit: PAGE, order: "desc" }),
  ]);
  const messages = h("div", { class: "messages", id: "thread-messages" });
  const olderBox = h("div", { class: "older" });
  let oldest = page.last_id;

  function olderButton(hasMore) {
    clear(olderBox, hasMore ? h("button", { type: "button", id: "load-older", onclick: loadOlder }, "Load older messages") : h("p", { class: "muted" }, "Start of thread"));
  }
  async function loadOlder() {
    const more = await get(`/v1/threads/${threadId}/messages`, { limit: PAGE, order: "desc", after: oldest });
    oldest = more.last_id || oldest;
    const frag = document.createDocumentFragment();
    for (const m of more.data.reverse()) frag.append(renderMessage(m));
    messages.prepend(frag);
    olderButton(more.has_more);
  }

  for (const m of [...page.data].reverse()) messages.append(renderMessage(m));
  olderButton(page.has_more);
  const runs = h("div", { class: "runs", id: "thread-runs" }, h("p", { class: "muted" }, "Loading runs…"));
  const meta = Object.entries(thread.metadata || {});
  const res = thread.tool_resources || {};
  clear(main,
    h("div", { class: "page-head" }, h("h1", {}, "Thread"), h("code", {}, thread.id),
      h("a", { class: "button secondary", href: `#/playground?thread=${thread.id}` }, "Continue in playground")),
    h("p", { class: "muted" }, `created ${when(thread.created_at)}`,
      meta.length ? [" · ", meta.map(([k, v]) => h("span", { class: "tag" }, `${k}: ${v}`))] : null,
      (res.file_search?.vector_store_ids || []).length ? ` · vector stores: ${res.file_search.vector_store_ids.join(", ")}` : null,
      (res.code_interpreter?.file_ids || []).length ? ` · code_interpreter files: ${res.code_interpreter.file_ids.join(", ")}` : null),
    h("div", { class: "thread-layout" },
      h("section", {}, h("h2", {}, "Messages"), olderBox, messages),
      h("section", {}, h("h2", {}, "Runs"), runs)));
  // The marker the tests and bench/bench_console.py wait for: the newest messages are on screen.
  document.body.dataset.threadReady = thread.id;
  window.__assistdTimings = { ...(window.__assistdTimings || {}), threadMessagesVisible: performance.now(), threadRender: performance.now() - t0 };
  messages.lastElementChild?.scrollIntoView({ block: "end" });

  try {
    const runPage = await get(`/v1/threads/${threadId}/runs`, { limit: 20, order: "desc" });
    clear(runs, runPage.data.length ? null : h("p", { class: "muted" }, "No runs."));
    for (const run of runPage.data) {
      const slot = h("div", {}, renderRun(run, []));
      runs.append(slot);
      runSteps(threadId, run.id).then((steps) => clear(slot, renderRun(run, steps))).catch((err) => slot.append(errorBox(err)));
    }
    if (runPage.has_more) runs.append(h("p", { class: "muted" }, "Showing the 20 newest runs."));
  } catch (err) {
    clear(runs, errorBox(err));
  }
}
