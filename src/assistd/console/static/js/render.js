// Rendering messages (text with citations and file links, images) and run steps, shared by pages.

import { download, fileInfo, fileURL, get } from "./api.js";
import { badge, h, pretty, when } from "./dom.js";

const INCLUDE_CONTENT = ["include[]", "step_details.tool_calls[*].file_search.results[*].content"];

// Passages behind citation markers: marker text "【c:r†name】" → the r-th result of the run's c-th
// file_search call (runs/citations.py), read from the run's steps with result content included.
const passageCache = new Map();
export function runPassages(threadId, runId) {
  if (!passageCache.has(runId)) {
    passageCache.set(runId, runSteps(threadId, runId).then((steps) => {
      const map = new Map();
      let call = 0;
      for (const step of steps) {
        if (step.step_details.type !== "tool_calls") continue;
        for (const tc of step.step_details.tool_calls) {
          if (tc.type !== "file_search") continue;
          (tc.file_search.results || []).forEach((r, i) => {
            map.set(`【${call}:${i}†${r.file_name}】`, r);
          });
          call += 1;
        }
      }
      return map;
    }).catch(() => new Map()));
  }
  return passageCache.get(runId);
}

export async function runSteps(threadId, runId) {
  const path = `/v1/threads/${threadId}/runs/${runId}/steps`;
  const out = [];
  let after;
  for (;;) {
    const page = await get(path, [["order", "asc"], ["limit", "100"], INCLUDE_CONTENT, ...(after ? [["after", after]] : [])]);
    out.push(...page.data);
    if (!page.has_more) return out;
    after = page.last_id;
  }
}

function passageText(result) {
  return (result.content || []).map((c) => c.text || "").join("\n");
}

function fileName(id, el) {
  fileInfo(id).then((f) => { el.textContent = f.filename; }).catch(() => { el.textContent = id; });
  return el;
}

export function imageFrom(fileId, alt) {
  const img = h("img", { class: "inline-image", alt: alt || fileId, dataset: { fileId } });
  fileURL(fileId).then((url) => { img.src = url; }).catch((e) => { img.replaceWith(h("span", { class: "error" }, `image ${fileId}: ${e.message}`)); });
  return img;
}

export function downloadLink(fileId, label) {
  const a = h("a", { href: "#", class: "file-download", dataset: { fileId }, onclick: (e) => {
    e.preventDefault();
    fileInfo(fileId).then((f) => download(fileId, f.filename)).catch(() => download(fileId, fileId));
  } }, "⬇ ", label ? label : fileName(fileId, h("span", {}, fileId)));
  return a;
}

// A text part with its annotations in place: citations become numbered links with footnotes
// (file and passage), file_path annotations become downloads.
export function renderText(text, message) {
  const value = text.value || "";
  const notes = [...(text.annotations || [])].sort((a, b) => a.start_index - b.start_index);
  const body = h("div", { class: "msg-text" });
  const footnotes = h("ol", { class: "citations" });
  let pos = 0;
  let n = 0;
  for (const note of notes) {
    if (note.start_index < pos) continue;
    let before = value.slice(pos, note.start_index);
    let end = note.end_index;
    let label = null;
    if (note.type === "file_path") {
      // A Markdown link around the path ([label](sandbox:/mnt/data/x.csv)) becomes one download link.
      const md = /\[([^\]\n]{1,200})\]\($/.exec(before);
      if (md && value[end] === ")") {
        before = before.slice(0, md.index);
        label = md[1];
        end += 1;
      }
    }
    body.append(before);
    if (note.type === "file_citation") {
      n += 1;
      const fileId = note.file_citation.file_id;
      const link = h("a", { class: "citation", href: `#/files/${fileId}`, title: note.text, dataset: { fileId } }, `[${n}]`);
      body.append(link);
      const passage = h("blockquote", { class: "passage" });
      const item = h("li", { class: "citation-note", dataset: { fileId } },
        h("a", { href: `#/files/${fileId}` }, fileName(fileId, h("span", {}, fileId))), " ", passage);
      footnotes.append(item);
      if (message && message.run_id) {
        runPassages(message.thread_id, message.run_id).then((map) => {
          const r = map.get(note.text);
          if (!r) return;
          const textOf = passageText(r);
          passage.textContent = textOf.length > 600 ? `${textOf.slice(0, 600)}…` : textOf;
          const href = `#/files/${fileId}?passage=${encodeURIComponent(textOf.slice(0, 200))}`;
          link.href = href;
          item.querySelector("a").href = href;
          link.title = `${r.file_name} (score ${r.score.toFixed(3)})`;
        });
      }
    } else if (note.type === "file_path") {
      body.append(downloadLink(note.file_path.file_id, label || note.text.split("/").pop()));
    } else {
      body.append(note.text);
    }
    pos = end;
  }
  body.append(value.slice(pos));
  return n ? [body, footnotes] : [body];
}

export function renderPart(part, message) {
  if (part.type === "text") return renderText(part.text, message);
  if (part.type === "image_file") return [imageFrom(part.image_file.file_id)];
  if (part.type === "image_url") {
    // Only web links become links (the page's CSP keeps other origins' images out, so no <img>).
    const url = part.image_url.url;
    const label = ["image: ", url.slice(0, 80)];
    return [/^https?:\/\//i.test(url) ? h("a", { href: url, rel: "noreferrer", target: "_blank" }, label) : h("span", { class: "muted" }, label)];
  }
  if (part.type === "refusal") return [h("div", { class: "msg-text refusal" }, part.refusal)];
  return [h("pre", {}, pretty(part))];
}

export function renderMessage(message) {
  const content = typeof message.content === "string" ? [{ type: "text", text: { value: message.content, annotations: [] } }] : message.content;
  const attachments = message.attachments || [];
  return h("article", { class: `msg role-${message.role}`, id: `m-${message.id}`, dataset: { id: message.id, role: message.role, status: message.status || "" } },
    h("header", {}, h("strong", {}, message.role), " ", h("span", { class: "muted" }, when(message.created_at)), " ",
      h("code", { class: "muted" }, message.id || ""), message.status && message.status !== "completed" ? badge(message.status) : null),
    h("div", { class: "msg-body" }, content.map((p) => renderPart(p, message))),
    attachments.length ? h("div", { class: "attachments" }, "Attached: ", attachments.map((a) => [downloadLink(a.file_id), " ", h("span", { class: "muted" }, `(${a.tools.map((t) => t.type).join(", ")}) `)])) : null);
}

// --- run steps ----------------------------------------------------------------------------------

function usage(u) {
  if (!u) return null;
  return h("span", { class: "usage muted" }, `tokens: ${u.prompt_tokens} prompt + ${u.completion_tokens} completion = ${u.total_tokens}`);
}

function renderToolCall(tc) {
  if (tc.type === "function") {
    return h("div", { class: "tool-call tool-function" },
      h("div", {}, h("strong", {}, "function "), h("code", {}, tc.function.name), " ", h("code", { class: "muted" }, tc.id)),
      h("div", { class: "label" }, "arguments"), h("pre", { class: "args" }, pretty(tc.function.arguments)),
      h("div", { class: "label" }, "output"),
      tc.function.output === null || tc.function.output === undefined ? h("p", { class: "muted" }, "awaiting output") : h("pre", { class: "output" }, tc.function.output));
  }
  if (tc.type === "file_search") {
    const fs = tc.file_search || {};
    const results = fs.results || [];
    return h("div", { class: "tool-call tool-file-search" },
      h("div", {}, h("strong", {}, "file_search "), h("code", { class: "muted" }, tc.id),
        fs.ranking_options ? h("span", { class: "muted" }, ` ranker ${fs.ranking_options.ranker}, threshold ${fs.ranking_options.score_threshold}`) : null),
      results.length ? h("ol", { class: "results" }, results.map((r) => h("li", { class: "result" },
        h("a", { href: `#/files/${r.file_id}` }, r.file_name), " ", h("span", { class: "score" }, `score ${r.score.toFixed(3)}`),
        r.content ? h("details", {}, h("summary", {}, "passage"), h("pre", { class: "passage" }, passageText(r))) : null)))
        : h("p", { class: "muted" }, "no results"));
  }
  if (tc.type === "code_interpreter") {
    const ci = tc.code_interpreter || {};
    return h("div", { class: "tool-call tool-code-interpreter" },
      h("div", {}, h("strong", {}, "code_interpreter "), h("code", { class: "muted" }, tc.id)),
      h("div", { class: "label" }, "input"), h("pre", { class: "code" }, ci.input || ""),
      (ci.outputs || []).map((o) => (o.type === "logs"
        ? [h("div", { class: "label" }, "logs"), h("pre", { class: "logs" }, o.logs)]
        : o.type === "image" ? [h("div", { class: "label" }, "image"), imageFrom(o.image.file_id, "code_interpreter image")]
          : h("pre", {}, pretty(o)))));
  }
  return h("pre", { class: "tool-call" }, pretty(tc));
}

export function renderStep(step) {
  const d = step.step_details;
  const ended = step.completed_at || step.failed_at || step.cancelled_at || step.expired_at;
  return h("li", { class: `step step-${step.type}`, dataset: { id: step.id, type: step.type } },
    h("div", { class: "step-head" }, badge(step.status), " ", h("strong", {}, step.type), " ", h("code", { class: "muted" }, step.id), " ",
      h("span", { class: "muted" }, when(step.created_at), ended ? ` → ${when(ended)}` : ""), " ", usage(step.usage)),
    d.type === "message_creation" ? h("div", {}, "created message ", h("a", { href: `#m-${d.message_creation.message_id}` }, d.message_creation.message_id)) : null,
    d.type === "tool_calls" ? d.tool_calls.map(renderToolCall) : null,
    step.last_error ? h("div", { class: "error" }, `${step.last_error.code}: ${step.last_error.message}`) : null);
}

export function runEvents(run) {
  const events = [["created", run.created_at], ["started", run.started_at], ["completed", run.completed_at],
    ["failed", run.failed_at], ["cancelled", run.cancelled_at]];
  if (run.status === "expired") events.push(["expired", run.expires_at]);
  if (run.status === "requires_action") events.push(["requires_action", null]);
  if (run.status === "incomplete") events.push(["incomplete", null]);
  return events.filter(([name, at]) => at || name === "requires_action" || name === "incomplete");
}

// Status changes and steps in time order (a status without a timestamp goes last).
function timeline(run, steps) {
  const items = [
    ...runEvents(run).map(([name, at], i) => ({ at: at ?? Infinity, rank: i, el: h("li", { class: "status-change", dataset: { status: name } },
      h("span", { class: "muted" }, at ? when(at) : ""), " ", h("strong", {}, name)) })),
    ...steps.map((step, i) => ({ at: step.created_at, rank: 100 + i, el: renderStep(step) })),
  ];
  // Same second: "created" and "started" before the steps they led to, "completed" after them.
  const weight = (item) => (item.rank < 100 && item.rank >= 2 ? 1 : 0);
  items.sort((a, b) => a.at - b.at || weight(a) - weight(b) || a.rank - b.rank);
  return items.map((item) => item.el);
}

export function renderRun(run, steps) {
  return h("section", { class: "run", dataset: { id: run.id, status: run.status } },
    h("header", {}, badge(run.status), " ", h("strong", {}, "run "), h("code", {}, run.id), " ",
      h("span", { class: "muted" }, `model ${run.model}, assistant ${run.assistant_id}`), " ", usage(run.usage)),
    h("ol", { class: "timeline" }, timeline(run, steps)),
    run.last_error ? h("div", { class: "error" }, `${run.last_error.code}: ${run.last_error.message}`) : null,
    run.incomplete_details ? h("div", { class: "muted" }, `incomplete: ${run.incomplete_details.reason}`) : null);
}
