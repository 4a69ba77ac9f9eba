// Import: how to bring an Assistants API export into this server with its ids (docs/import-export.md).
// The import itself runs where the server's database is (`assistd import`); this page says how, and
// imported threads then show under Threads like any other.

import { clear, h } from "./dom.js";

function command(text) {
  return h("pre", { class: "command" }, h("code", {}, text));
}

export function importPage(main) {
  const base = `${location.origin}/v1`;
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
      " with the others: search by id or metadata value."));
}
