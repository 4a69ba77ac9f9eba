// The console's shell: the key prompt, navigation, and a hash router over the pages.

import { api, getKey, setKey } from "./api.js";
import { assistantForm, assistantsPage } from "./assistants.js";
import { clear, errorBox, h, newView } from "./dom.js";
import { filePage, filesPage, storePage, storesPage } from "./files.js";
import { importPage } from "./import.js";
import { playgroundPage } from "./playground.js";
import { threadPage, threadsPage } from "./threads.js";

const main = document.getElementById("main");
const dialog = document.getElementById("key-dialog");
const keyForm = document.getElementById("key-form");
const keyInput = document.getElementById("key-input");
const keyError = document.getElementById("key-error");
const signOut = document.getElementById("sign-out");

const routes = [
  [/^\/assistants$/, () => assistantsPage(main)],
  [/^\/assistants\/new$/, () => assistantForm(main, null)],
  [/^\/assistants\/([\w-]+)$/, (m) => assistantForm(main, m[1])],
  [/^\/playground$/, (m, params) => playgroundPage(main, params)],
  [/^\/threads$/, (m, params) => threadsPage(main, params)],
  [/^\/threads\/([\w-]+)$/, (m) => threadPage(main, m[1])],
  [/^\/files$/, () => filesPage(main)],
  [/^\/files\/([\w-]+)$/, (m, params) => filePage(main, m[1], params)],
  [/^\/vector_stores$/, () => storesPage(main)],
  [/^\/vector_stores\/([\w-]+)$/, (m, params, isCurrent) => storePage(main, m[1], isCurrent)],
  [/^\/import$/, () => importPage(main)],
];

async function route() {
  const isCurrent = newView();
  const [path, qs] = (location.hash.slice(1) || "/assistants").split("?");
  const params = new URLSearchParams(qs || "");
  const page = path.split("/")[1];
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === page);
  delete document.body.dataset.threadReady;
  for (const [pattern, render] of routes) {
    const m = pattern.exec(path);
    if (!m) continue;
    try {
      await render(m, params, isCurrent);
    } catch (err) {
      if (isCurrent() && err.status !== 401) clear(main, h("h1", {}, "Something went wrong"), errorBox(err));
    }
    return;
  }
  clear(main, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/assistants" }, "Back to assistants")));
}

// The key: asked for when the server answers 401, checked before it is kept.
function askForKey(message) {
  // Several calls may fail at once: a later one without a message keeps the first one's.
  if (message || !dialog.open) {
    keyError.hidden = !message;
    keyError.textContent = message || "";
  }
  clear(main, h("p", { class: "muted" }, "This server needs an API key."));
  if (!dialog.open) dialog.showModal();
  keyInput.focus();
}

keyForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const key = keyInput.value.trim();
  if (!key) return;
  try {
    await api("GET", "/admin/v1/models", { key });
  } catch (err) {
    askForKey(err.status === 401 ? err.message : `The server answered: ${err.message}`);
    return;
  }
  setKey(key);
  keyInput.value = "";
  dialog.close();
  start();
});
dialog.addEventListener("cancel", (e) => e.preventDefault());

window.addEventListener("assistd:unauthorized", (e) => {
  // A stored key that stopped working says why; a first visit just asks.
  const had = getKey();
  setKey(null);
  askForKey(had ? e.detail.message : null);
});

signOut.addEventListener("click", () => { setKey(null); location.reload(); });

let started = false;
function start() {
  signOut.hidden = !getKey();
  if (!started) {
    started = true;
    window.addEventListener("hashchange", route);
  }
  route();
}

// No probe first: the page's own calls tell. On an open server (no keys, loopback) they succeed and
// the console opens directly; behind keys the first 401 opens the key prompt.
start();
