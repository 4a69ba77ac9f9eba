// Playground: chat with an assistant in a new or existing thread, streamed over SSE; answer
// requires_action by hand; attach files; citations, images and generated files rendered.

import { get, listAll, post, stream, upload } from "./api.js";
import { clear, errorBox, h, when } from "./dom.js";
import { renderMessage, renderPart } from "./render.js";

export async function playgroundPage(main, params) {
  clear(main, h("p", { class: "muted" }, "Loading…"));
  const [assistants, threads] = await Promise.all([listAll("/v1/assistants"), get("/admin/v1/threads", { limit: 20 })]);
  let threadId = params.get("thread") || null;

  const assistantSelect = h("select", { id: "pg-assistant", name: "assistant" },
    assistants.map((a) => h("option", { value: a.id, selected: a.id === params.get("assistant") }, `${a.name || "(unnamed)"} · ${a.model} · ${a.id}`)));
  const threadInput = h("input", { id: "pg-thread", list: "pg-threads", placeholder: "new thread", value: threadId || "" });
  const threadList = h("datalist", { id: "pg-threads" }, threads.data.map((t) => h("option", { value: t.id }, when(t.created_at))));
  const conversation = h("div", { class: "conversation", id: "conversation", "aria-live": "polite" });
  const status = h("div", { class: "run-status muted", id: "run-status", role: "status" });
  const actionPanel = h("div", { id: "required-action" });
  const text = h("textarea", { id: "pg-input", rows: 3, placeholder: "Message…" });
  const files = h("input", { type: "file", id: "pg-files", multiple: true });
  const attachSearch = h("input", { type: "checkbox", id: "pg-attach-file-search", checked: true });
  const attachCode = h("input", { type: "checkbox", id: "pg-attach-code-interpreter" });
  const progress = h("progress", { id: "pg-progress", max: 1, value: 0, hidden: true });
  const send = h("button", { type: "submit", id: "pg-send" }, "Send");
  const error = h("div", { id: "pg-error" });

  const threadLink = h("span", { id: "pg-thread-link" });
  function showThread() {
    clear(threadLink, threadId ? ["Thread ", h("a", { href: `#/threads/${threadId}` }, threadId)] : "A new thread starts with your first message.");
  }

  async function openThread() {
    threadId = threadInput.value.trim() || null;
    clear(conversation);
    clear(error);
    showThread();
    if (!threadId) return;
    try {
      const page = await get(`/v1/threads/${threadId}/messages`, { limit: 20, order: "desc" });
      if (page.has_more) conversation.append(h("p", { class: "muted" }, "Older messages: ", h("a", { href: `#/threads/${threadId}` }, "open the thread viewer")));
      for (const m of page.data.reverse()) conversation.append(renderMessage(m));
    } catch (err) {
      error.append(errorBox(err));
    }
  }

  // --- the stream -------------------------------------------------------------------------------
  const live = new Map(); // message id → {el, parts: [elements per content index]}

  function onDelta(data) {
    let entry = live.get(data.id);
    if (!entry) {
      const el = renderMessage({ id: data.id, role: "assistant", content: [], created_at: Math.floor(Date.now() / 1000), status: "in_progress" });
      conversation.append(el);
      entry = { el, parts: [] };
      live.set(data.id, entry);
    }
    for (const part of data.delta.content || []) {
      if (part.type === "text") {
        if (!entry.parts[part.index]) {
          entry.parts[part.index] = h("div", { class: "msg-text streaming" });
          entry.el.querySelector(".msg-body").append(entry.parts[part.index]);
        }
        entry.parts[part.index].append(part.text.value || "");
      } else {
        entry.el.querySelector(".msg-body").append(...renderPart(part, null));
      }
    }
    conversation.scrollTop = conversation.scrollHeight;
  }

  function onMessage(message, done) {
    const el = renderMessage(message);
    const entry = live.get(message.id);
    if (entry) entry.el.replaceWith(el);
    else conversation.append(el);
    live.set(message.id, { el, parts: [] });
    if (done) live.delete(message.id);
  }

  function requiresAction(run) {
    const calls = run.required_action.submit_tool_outputs.tool_calls;
    const outputs = calls.map((call) => h("textarea", { class: "tool-output", rows: 2, dataset: { callId: call.id }, placeholder: `output of ${call.function.name}` }));
    const submit = h("button", { type: "submit", id: "submit-outputs" }, "Submit outputs");
    clear(actionPanel, h("form", { class: "required-action", onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      const tool_outputs = calls.map((call, i) => ({ tool_call_id: call.id, output: outputs[i].value }));
      clear(actionPanel);
      await follow(stream(`/v1/threads/${run.thread_id}/runs/${run.id}/submit_tool_outputs`, { tool_outputs }));
    } },
    h("h3", {}, "The run needs function outputs"),
    calls.map((call, i) => h("div", { class: "tool-call tool-function", dataset: { callId: call.id } },
      h("div", {}, h("strong", {}, call.function.name), " ", h("code", { class: "muted" }, call.id)),
      h("pre", { class: "args" }, (() => { try { return JSON.stringify(JSON.parse(call.function.arguments), null, 2); } catch { return call.function.arguments; } })()),
      outputs[i])),
    submit));
    outputs[0]?.focus();
  }

  async function follow(events) {
    send.disabled = true;
    try {
      for await (const { event, data } of events) {
        if (event === "thread.message.delta") onDelta(data);
        else if (event === "thread.message.created") onMessage(data, false);
        else if (event === "thread.message.completed" || event === "thread.message.incomplete") onMessage(data, true);
        else if (event.startsWith("thread.run.step.")) {
          if (event === "thread.run.step.created" && data.step_details.type === "tool_calls") status.textContent = `${data.run_id}: calling tools…`;
        } else if (event.startsWith("thread.run.")) {
          status.textContent = `${data.id}: ${data.status}${data.usage ? ` · ${data.usage.total_tokens} tokens` : ""}`;
          status.dataset.status = data.status;
          if (event === "thread.run.requires_action") requiresAction(data);
          if (data.last_error) error.append(errorBox({ message: `${data.last_error.code}: ${data.last_error.message}` }));
        } else if (event === "error") {
          error.append(errorBox(data.error || data));
        }
      }
    } catch (err) {
      error.append(errorBox(err));
    } finally {
      send.disabled = false;
    }
  }

  async function submit(e) {
    e.preventDefault();
    clear(error);
    const assistantId = assistantSelect.value;
    if (!assistantId) { error.append(errorBox({ message: "Create an assistant first." })); return; }
    const content = text.value.trim();
    const chosen = [...files.files];
    if (!content && !chosen.length) return;
    send.disabled = true;
    try {
      const tools = [];
      if (attachSearch.checked) tools.push({ type: "file_search" });
      if (attachCode.checked) tools.push({ type: "code_interpreter" });
      const attachments = [];
      if (chosen.length) {
        progress.hidden = false;
        for (const [i, file] of chosen.entries()) {
          const uploaded = await upload(file, "assistants", (f) => { progress.value = (i + f) / chosen.length; });
          attachments.push({ file_id: uploaded.id, tools });
        }
      }
      if (!threadId) {
        threadId = (await post("/v1/threads", {})).id;
        threadInput.value = threadId;
        showThread();
      }
      const message = await post(`/v1/threads/${threadId}/messages`, { role: "user", content: content || "(see attached files)", attachments });
      conversation.append(renderMessage(message));
      text.value = "";
      files.value = "";
      progress.hidden = true;
      await follow(stream(`/v1/threads/${threadId}/runs`, { assistant_id: assistantId }));
    } catch (err) {
      error.append(errorBox(err));
      send.disabled = false;
    }
  }

  clear(main,
    h("div", { class: "page-head" }, h("h1", {}, "Playground")),
    assistants.length ? null : h("p", { class: "error" }, "No assistants yet: ", h("a", { href: "#/assistants/new" }, "create one"), "."),
    h("div", { class: "row controls" },
      h("label", { class: "field" }, h("span", { class: "label" }, "Assistant"), assistantSelect),
      h("label", { class: "field" }, h("span", { class: "label" }, "Thread (empty: new)"), h("span", {}, threadInput, threadList)),
      h("button", { type: "button", id: "pg-open", onclick: openThread }, "Open thread")),
    h("p", { class: "muted" }, threadLink),
    conversation, actionPanel, status, error,
    h("form", { class: "composer", id: "pg-form", onsubmit: submit },
      text,
      h("div", { class: "row" }, files, h("label", { class: "check" }, attachSearch, " file_search"),
        h("label", { class: "check" }, attachCode, " code_interpreter"), progress, send)));
  text.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) submit(e); });
  showThread();
  if (threadId) await openThread();
}
