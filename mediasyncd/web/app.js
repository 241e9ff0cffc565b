// The dashboard: wires the panels to the control API and /api/v1/ws. With a status_token, the first 401
// shows the token prompt; POST /api/v1/login sets the HttpOnly session cookie and the page starts over.

import { ApiError, get, onUnauthorized, post } from "./api.js";
import { bytes } from "./format.js";
import { Gallery } from "./gallery.js";
import { Live } from "./live.js";
import { Purge } from "./purge.js";
import { Remotes, renderSinks, renderWorkflow } from "./remotes.js";
import { Search } from "./search.js";
import { Transfers } from "./transfers.js";
import { Viewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);

const viewer = new Viewer($("viewer"));
const open = (id) => viewer.open(id).catch((error) => console.error(error));
const remotes = new Remotes($("remotes"));
const transfers = new Transfers($("transfers"));
const gallery = new Gallery(
  { grid: $("gallery"), empty: $("gallery-empty"), older: $("older"), newer: $("newer"), latest: $("latest"), note: $("page-note") },
  { onOpen: open },
);
new Search(
  { form: $("search"), input: $("q"), box: $("results-box"), results: $("results"), count: $("results-count"), close: $("results-close"), gallery: $("gallery-box") },
  { onOpen: open },
);
const purge = new Purge({
  remote: $("purge-remote"), preview: $("purge-preview"), confirm: $("purge-confirm"), note: $("purge-note"),
  table: $("purge-table"), schedule: $("purge-schedule"), hold: $("purge-hold"),
});

function showStatus(status) {
  $("version").textContent = `v${status.version}`;
  const t = status.totals ?? {};
  $("totals").textContent = `${t.landed_files ?? 0} files · ${bytes(t.landed_bytes ?? 0)}${t.failed_files ? ` · ${t.failed_files} failed` : ""}`;
  remotes.render(status.remotes ?? []);
  transfers.render(status.remotes ?? []);
  purge.status(status.purge);
  renderSinks($("sinks-box"), $("sinks"), status.sinks);
  renderWorkflow($("workflow-box"), $("workflow"), status.workflow);
}

function showEvent(event) {
  const data = event.data ?? {};
  if (event.type === "file_synced" && data.file_id) {
    gallery.arrived({ id: data.file_id, path: event.path, remote: event.remote, library_path: data.library_path, thumbnail: false });
  } else if (event.type === "file_processed" && data.file_id) {
    gallery.processed(data.file_id);
  }
}

function setLink(state) {
  $("link").dataset.state = state;
  $("link").textContent = state;
}

/** Before reconnecting: true when the API still lets us in (a 401 shows the prompt instead). */
async function stillAllowed() {
  try {
    await get("/api/v1/remotes");
    return true;
  } catch (error) {
    return !(error instanceof ApiError && error.status === 401);
  }
}

const live = new Live({ onStatus: showStatus, onEvent: showEvent, onLink: setLink, onClosedUnauthorized: stillAllowed });

function askForToken() {
  live.close();
  setLink("locked");
  $("main").hidden = true;
  $("login").hidden = false;
  $("token").focus();
}

onUnauthorized(askForToken);

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("token");
  try {
    await post("/api/v1/login", { token: input.value });
    input.value = "";
    $("login-error").textContent = "";
    $("login").hidden = true;
    await start();
  } catch (error) {
    $("login-error").textContent = error.status === 401 ? "That is not the token." : error.message;
    input.select();
  }
});

async function start() {
  let answer;
  try {
    answer = await get("/api/v1/remotes");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return; // the prompt is up
    setLink("offline");
    setTimeout(start, 3000);
    return;
  }
  $("login").hidden = true;
  $("main").hidden = false;
  remotes.setConfig(answer.remotes);
  remotes.render(answer.remotes);
  purge.setRemotes(answer.remotes);
  live.connect(); // first: arrivals during the page load below are not missed (tiles dedupe by id)
  await gallery.showLatest();
}

start();
