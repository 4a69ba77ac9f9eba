// Assistants: list, create, edit every field, delete.

import { del, get, listAll, post } from "./api.js";
import { clear, errorBox, h, when } from "./dom.js";
import { checkFunction, checkJsonSchemaFormat } from "./schema.js";

const EXAMPLE_FUNCTION = {
  name: "get_weather",
  description: "The weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

let modelNames = null;
async function modelOptions() {
  if (!modelNames) {
    modelNames = get("/admin/v1/models").then((routes) => ({
      exact: routes.data.filter((r) => !r.pattern).map((r) => r.id),
      patterns: routes.data.filter((r) => r.pattern).map((r) => r.id),
      default: routes.default,
    })).catch(() => ({ exact: [], patterns: [], default: null }));
  }
  return modelNames;
}

export async function assistantsPage(main) {
  clear(main, h("p", { class: "muted" }, "Loading assistants…"));
  const list = await listAll("/v1/assistants");
  clear(main,
    h("div", { class: "page-head" }, h("h1", {}, "Assistants"), h("a", { class: "button", href: "#/assistants/new", id: "new-assistant" }, "New assistant")),
    list.length ? h("table", { class: "list", id: "assistant-list" },
      h("thead", {}, h("tr", {}, ["Name", "Model", "Tools", "Created", "Id"].map((c) => h("th", {}, c)))),
      h("tbody", {}, list.map((a) => h("tr", { dataset: { id: a.id } },
        h("td", {}, h("a", { href: `#/assistants/${a.id}` }, a.name || "(unnamed)")),
        h("td", {}, a.model),
        h("td", {}, a.tools.map((t) => (t.type === "function" ? t.function.name : t.type)).join(", ")),
        h("td", {}, when(a.created_at)),
        h("td", {}, h("code", {}, a.id))))))
      : h("p", { class: "muted" }, "No assistants yet."));
}

function field(label, input, hint) {
  return h("label", { class: "field" }, h("span", { class: "label" }, label), input, hint ? h("small", { class: "muted" }, hint) : null);
}

function idsList(text) {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

function functionEditor(initial, onChange) {
  const area = h("textarea", { class: "json-editor function-editor", rows: 10, spellcheck: false });
  area.value = JSON.stringify(initial, null, 2);
  const status = h("div", { class: "validation", role: "status" });
  const box = h("div", { class: "function-tool" }, area, status,
    h("button", { type: "button", class: "link remove-function", onclick: () => { box.remove(); onChange(); } }, "Remove function"));
  const check = () => {
    const { errors } = checkFunction(area.value);
    box.classList.toggle("invalid", errors.length > 0);
    clear(status, errors.length ? h("ul", { class: "error" }, errors.map((e) => h("li", {}, e))) : h("span", { class: "ok" }, "✓ valid function"));
    onChange();
  };
  area.addEventListener("input", check);
  box.check = check;
  box.value = () => checkFunction(area.value);
  return box;
}

function metadataRow(key = "", value = "") {
  const row = h("div", { class: "meta-row" },
    h("input", { class: "meta-key", placeholder: "key", value: key, maxlength: 64 }),
    h("input", { class: "meta-value", placeholder: "value", value, maxlength: 512 }),
    h("button", { type: "button", class: "link", onclick: () => row.remove() }, "✕"));
  return row;
}

export async function assistantForm(main, id) {
  clear(main, h("p", { class: "muted" }, "Loading…"));
  const [a, models] = await Promise.all([id ? get(`/v1/assistants/${id}`) : Promise.resolve(null), modelOptions()]);
  const current = a || { name: "", description: "", model: models.exact[0] || "", instructions: "", tools: [], tool_resources: {}, metadata: {}, temperature: 1, top_p: 1, response_format: "auto" };

  const name = h("input", { name: "name", value: current.name || "", maxlength: 256 });
  const description = h("input", { name: "description", value: current.description || "", maxlength: 512 });
  const model = h("input", { name: "model", value: current.model, list: "model-names", required: true, maxlength: 256 });
  const modelList = h("datalist", { id: "model-names" }, models.exact.map((m) => h("option", { value: m })));
  const modelHint = [
    models.exact.length ? `Configured: ${models.exact.join(", ")}.` : "",
    models.patterns.length ? ` Patterns: ${models.patterns.join(", ")}.` : "",
    models.default ? ` Any other name goes to backend "${models.default.backend}".` : " Names outside the routing table are refused.",
  ].join("");
  const instructions = h("textarea", { name: "instructions", rows: 5 });
  instructions.value = current.instructions || "";

  const hasTool = (type) => current.tools.some((t) => t.type === type);
  const fileSearch = h("input", { type: "checkbox", name: "file_search", checked: hasTool("file_search") });
  const codeInterpreter = h("input", { type: "checkbox", name: "code_interpreter", checked: hasTool("code_interpreter") });
  const res = current.tool_resources || {};
  const storeIds = h("input", { name: "vector_store_ids", value: ((res.file_search || {}).vector_store_ids || []).join(", "), placeholder: "vs_…" });
  const ciFiles = h("input", { name: "code_interpreter_file_ids", value: ((res.code_interpreter || {}).file_ids || []).join(", "), placeholder: "file-…, file-…" });
  const stores = await listAll("/v1/vector_stores").catch(() => []);
  const storeHint = stores.length ? `Stores: ${stores.map((s) => `${s.id} (${s.name})`).join(", ")}` : "No vector stores yet (see Vector stores).";

  const save = h("button", { type: "submit", id: "save-assistant" }, id ? "Save" : "Create");
  const functions = h("div", { class: "functions" });
  const refresh = () => {
    const boxes = [...functions.querySelectorAll(".function-tool")];
    const names = boxes.map((b) => b.value().value).filter(Boolean).map((f) => f.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    dupNote.textContent = dup ? `Two functions are named "${dup}".` : "";
    save.disabled = boxes.some((b) => b.value().errors.length) || Boolean(dup) || !formatOk();
  };
  const dupNote = h("p", { class: "error", role: "alert" });
  for (const t of current.tools.filter((t) => t.type === "function")) functions.append(functionEditor(t.function, refresh));

  const rf = current.response_format;
  const rfKind = rf === "auto" || rf === null || rf === undefined ? "auto" : rf.type;
  const format = h("select", { name: "response_format" }, ["auto", "text", "json_object", "json_schema"].map((v) => h("option", { value: v, selected: v === rfKind }, v)));
  const schemaArea = h("textarea", { class: "json-editor", name: "json_schema", rows: 8, spellcheck: false });
  schemaArea.value = rfKind === "json_schema" ? JSON.stringify(rf.json_schema, null, 2) : JSON.stringify({ name: "answer", schema: { type: "object", properties: { answer: { type: "string" } }, required: ["answer"] }, strict: true }, null, 2);
  const schemaStatus = h("div", { class: "validation" });
  const schemaBox = h("div", { hidden: rfKind !== "json_schema" }, schemaArea, schemaStatus);
  function formatOk() {
    if (format.value !== "json_schema") return true;
    const { errors } = checkJsonSchemaFormat(schemaArea.value);
    clear(schemaStatus, errors.length ? h("ul", { class: "error" }, errors.map((e) => h("li", {}, e))) : h("span", { class: "ok" }, "✓ valid schema"));
    return errors.length === 0;
  }
  format.addEventListener("change", () => { schemaBox.hidden = format.value !== "json_schema"; refresh(); });
  schemaArea.addEventListener("input", refresh);

  const temperature = h("input", { type: "number", name: "temperature", min: 0, max: 2, step: 0.1, value: current.temperature ?? "" });
  const topP = h("input", { type: "number", name: "top_p", min: 0, max: 1, step: 0.05, value: current.top_p ?? "" });
  const meta = h("div", { class: "metadata" }, Object.entries(current.metadata || {}).map(([k, v]) => metadataRow(k, v)));
  const message = h("div", { class: "form-message" });

  async function submit(e) {
    e.preventDefault();
    const tools = [];
    if (fileSearch.checked) tools.push({ type: "file_search" });
    if (codeInterpreter.checked) tools.push({ type: "code_interpreter" });
    for (const box of functions.querySelectorAll(".function-tool")) tools.push({ type: "function", function: box.value().value });
    const metadata = {};
    for (const row of meta.querySelectorAll(".meta-row")) {
      const k = row.querySelector(".meta-key").value.trim();
      if (k) metadata[k] = row.querySelector(".meta-value").value;
    }
    const body = {
      name: name.value || null,
      description: description.value || null,
      model: model.value.trim(),
      instructions: instructions.value || null,
      tools,
      tool_resources: {
        file_search: { vector_store_ids: idsList(storeIds.value) },
        code_interpreter: { file_ids: idsList(ciFiles.value) },
      },
      response_format: format.value === "auto" ? "auto" : format.value === "json_schema" ? { type: "json_schema", json_schema: JSON.parse(schemaArea.value) } : { type: format.value },
      temperature: temperature.value === "" ? null : Number(temperature.value),
      top_p: topP.value === "" ? null : Number(topP.value),
      metadata,
    };
    save.disabled = true;
    try {
      const saved = await post(id ? `/v1/assistants/${id}` : "/v1/assistants", body);
      clear(message, h("p", { class: "ok", role: "status" }, `Saved ${saved.id}.`));
      if (!id) location.hash = `#/assistants/${saved.id}`;
    } catch (err) {
      clear(message, errorBox(err));
    } finally {
      refresh();
    }
  }

  async function remove() {
    if (!confirm(`Delete assistant ${id}?`)) return;
    try {
      await del(`/v1/assistants/${id}`);
      location.hash = "#/assistants";
    } catch (err) {
      clear(message, errorBox(err));
    }
  }

  clear(main,
    h("div", { class: "page-head" }, h("h1", {}, id ? `Assistant ${current.name || id}` : "New assistant"),
      id ? h("code", { class: "muted" }, id) : null),
    h("form", { id: "assistant-form", class: "form", onsubmit: submit },
      field("Name", name), field("Description", description),
      field("Model", h("span", {}, model, modelList), modelHint),
      field("Instructions", instructions),
      h("fieldset", {}, h("legend", {}, "Tools"),
        h("label", { class: "check" }, fileSearch, " file_search"),
        field("Vector store ids (file_search)", storeIds, storeHint),
        h("label", { class: "check" }, codeInterpreter, " code_interpreter"),
        field("File ids (code_interpreter)", ciFiles, "Comma-separated file ids"),
        h("div", { class: "label" }, "Functions (JSON: name, description, parameters as JSON Schema, strict)"),
        functions, dupNote,
        h("button", { type: "button", id: "add-function", onclick: () => { const box = functionEditor(EXAMPLE_FUNCTION, refresh); functions.append(box); box.check(); box.querySelector("textarea").focus(); } }, "Add function")),
      h("fieldset", {}, h("legend", {}, "Response format"), format, schemaBox),
      h("div", { class: "row" }, field("Temperature", temperature, "0 to 2"), field("top_p", topP, "0 to 1")),
      h("fieldset", {}, h("legend", {}, "Metadata"), meta,
        h("button", { type: "button", class: "link", id: "add-metadata", onclick: () => meta.append(metadataRow()) }, "+ Add key")),
      message,
      h("div", { class: "actions" }, save,
        id ? h("button", { type: "button", class: "danger", id: "delete-assistant", onclick: remove }, "Delete") : null,
        id ? h("a", { class: "button secondary", href: `#/playground?assistant=${id}` }, "Open in playground") : null)));
  for (const box of functions.querySelectorAll(".function-tool")) box.check();
  refresh();
}
