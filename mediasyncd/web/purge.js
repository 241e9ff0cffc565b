// The purge preview (a dry-run job: what would go and what stays, with reasons), the confirm button
// that runs it for real, and the purge schedule's pause/resume.

import { post, untilDone } from "./api.js";
import { bytes, duration, h } from "./format.js";

const ROWS_SHOWN = 500;

export class Purge {
  constructor({ remote, preview, confirm, note, table, schedule, hold }) {
    Object.assign(this, { remote, preview, confirm, note, table, schedule, hold });
    this.roots = new Map(); // remote -> its roots, to show paths under them
    this.planned = null; // {remote, count} of the last preview
    this.armed = false;
    this.held = null;
    preview.addEventListener("click", () => this.run(true));
    confirm.addEventListener("click", () => this.confirmClicked());
    hold.addEventListener("click", () => this.toggleSchedule());
  }

  setRemotes(remotes) {
    const names = remotes.map((r) => r.name);
    for (const r of remotes) this.roots.set(r.name, r.config?.roots ?? []);
    const chosen = this.remote.value;
    this.remote.replaceChildren(h("option", { value: "" }, "all remotes"), ...names.map((n) => h("option", { value: n }, n)));
    this.remote.value = names.includes(chosen) ? chosen : "";
  }

  /** The `purge` object of /status, when the daemon has a purge schedule. */
  status(purge) {
    this.hold.hidden = !purge;
    if (!purge) {
      this.schedule.textContent = "";
      return;
    }
    this.held = Boolean(purge.held);
    this.schedule.textContent = this.held ? "Scheduled purges: paused" : "Scheduled purges: on";
    this.hold.textContent = this.held ? "Resume schedule" : "Pause schedule";
  }

  async toggleSchedule() {
    this.hold.disabled = true;
    try {
      const answer = await post(`/api/v1/purge/${this.held ? "resume" : "pause"}`);
      this.status({ held: answer.held });
    } catch (error) {
      this.note.textContent = `refused: ${error.message}`;
    } finally {
      this.hold.disabled = false;
    }
  }

  confirmClicked() {
    if (!this.planned) return;
    if (!this.armed) {
      this.armed = true;
      this.confirm.textContent = `Really delete ${this.planned.count} file(s) from the remote(s)?`;
      return;
    }
    this.run(false);
  }

  async run(dryRun) {
    const remote = this.remote.value || null;
    this.preview.disabled = true;
    this.confirm.hidden = true;
    this.armed = false;
    try {
      const { job } = await post("/api/v1/purge", { remote, dry_run: dryRun });
      const done = await untilDone(job, (j) => {
        this.note.textContent = `${dryRun ? "preview" : "purge"} ${j.state}…`;
      });
      if (done.state !== "done") {
        this.note.textContent = `${dryRun ? "preview" : "purge"} ${done.state}: ${done.error ?? ""}`;
        return;
      }
      const runs = done.result.runs ?? [];
      this.show(runs, dryRun);
      const count = runs.reduce((sum, r) => sum + (r.delete?.length ?? 0), 0);
      const forReal = runs.some((r) => r.ok && !r.config_dry_run);
      this.planned = dryRun && count > 0 && forReal ? { remote, count } : null;
      this.confirm.hidden = !this.planned;
      this.confirm.textContent = `Purge ${count} file(s) now`;
    } catch (error) {
      this.note.textContent = `refused: ${error.message}`;
    } finally {
      this.preview.disabled = false;
    }
  }

  /** A remote path under one of the remote's roots, without the root. */
  shortPath(remote, path) {
    for (const root of this.roots.get(remote) ?? []) {
      const prefix = root.endsWith("/") ? root : `${root}/`;
      if (path.startsWith(prefix)) return path.slice(prefix.length);
    }
    return path;
  }

  show(runs, dryRun) {
    const rows = [];
    const notes = [];
    for (const run of runs) {
      if (!run.ok) {
        notes.push(`${run.remote}: ${run.error}`);
        continue;
      }
      const verb = run.dry_run ? "would go" : "deleted";
      notes.push(
        `${run.remote}: ${run.delete.length} ${verb} (${bytes(run.freed_bytes)}), ${run.kept.length} stay` +
          (run.config_dry_run ? " — purge.dry_run is set in the config, nothing is deleted" : ""),
      );
      for (const d of run.delete) {
        const why = d.for_space ? "to free space" : `older than the limit (${duration(d.age_s)} old)`;
        rows.push(["go", run.remote, d.path, verb, why]);
      }
      for (const k of run.kept) rows.push(["stays", run.remote, k.path, "stays", k.text ?? k.reason]);
    }
    if (!dryRun && runs.length === 0) notes.push("nothing to purge");
    this.note.textContent = notes.join(" · ");
    const body = this.table.tBodies[0];
    const shown = rows.slice(0, ROWS_SHOWN).map(([kind, remote, path, outcome, why]) =>
      h(
        "tr",
        { class: kind },
        h("td", {}, remote),
        h("td", { class: "path", title: path }, this.shortPath(remote, path)),
        h("td", {}, outcome),
        h("td", {}, why),
      ),
    );
    if (rows.length > ROWS_SHOWN) shown.push(h("tr", {}, h("td", { colspan: 4, class: "muted" }, `… and ${rows.length - ROWS_SHOWN} more`)));
    body.replaceChildren(...shown);
    this.table.hidden = rows.length === 0;
  }
}
