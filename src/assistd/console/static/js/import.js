// Import: how to bring an Assistants API export into this server with its ids (docs/import-export.md).
// The import itself runs where the server's database is (`assistd import`); this page says how, and
// imported threads then show under Threads like any other.

import { get } from "./api.js";
import { bytes, clear, errorBox, h, when } from "./dom.js";

function command(text) {
  return h("pre", { class: "command" }, h("code", {}, text));
}

// Files an import was told about (attachments, images, citations) but not given the bytes of.
async function missingFiles(box) {
  try {
    const list = await get("/admin/v1/imports/missing_files");
    clear(box, h("h2", {}, "Files without their bytes"),
      list.data.length ? [
        h("p", { class: "muted" }, "Referenced by imported messages or steps; import again with --files DIR to bring their bytes."),
        h("table", { class: "list" },
          h("thead", {}, h("tr", {}, ["File", "Filename", "Size", "Created", "Thread"].map((c) => h("th", {}, c)))),
          h("tbody", {}, list.data.map((f) => h("tr", { dataset: { id: f.id } },
            h("td", {}, f.id),
            h("td", {}, f.filename),
            h("td", {}, f.bytes === null ? "" : bytes(f.bytes)),
            h("td", {}, when(f.created_at)),
            h("td", {}, f.thread_id ? h("a", { href: `#/threads/${f.thread_id}` }, f.thread_id) : "")))))]
        : h("p", { class: "muted" }, "None: every file an import referenced is here."));
  } catch (err) {
    clear(box, errorBox(err));
  }
}

export async function importPage(main) {
  const base = `${location.origin}/v1`;
  const missing = h("div", { id: "missing-files" });
  clear(main,
    h("h1", {}, "Import"),
    h("p", {}, "Threads, messages, runs and assistants exported from OpenAI's Assistants API (for example with the ",
      h("code", {}, "assistants-api-export"), " tool) keep their ids here: the ",
      h("code", {}, "asst_…"), " and ", h("code", {}, "thread_…"), " ids your application stored work again unchanged."),
    h("ol", { id: "import-steps" },
      h("li", {}, "See what would be imported, and what cannot be, without writing anything:",
        command("assistd import ./export --project myapp --dry-run")),
      h("li", {}, "Import. Give the original files' bytes with --files; --reindex recreates the vector stores the threads and assistants name:",
        command("assistd import ./export --project myapp --files ./original-files --reindex")),
      h("li", {}, "Give the application a key for that project and point it here:",
        command(`assistd keys create --project myapp\nOpenAI(base_url="${base}", api_key="sk-assistd-…")`))),
    h("p", {}, "Run the commands with the same settings as the server (ASSISTD_DATABASE_URL, ASSISTD_DATA_DIR). ",
      "Importing twice changes nothing; each thread is written whole or not at all. ",
      h("code", {}, "assistd export PATH"), " writes this server's data in the same format, file bytes included."),
    h("p", {}, "Imported threads are listed under ", h("a", { href: "#/threads" }, "Threads"),
      " with the others: search by id or metadata value."),
    missing);
  await missingFiles(missing);
}
