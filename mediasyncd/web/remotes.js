// One card per remote: state, transport and watch mode (when the daemon says), last pass, errors,
// paused/held, and the "sync now" and "pause"/"resume" buttons. Cards are kept and updated in place.

import { post, untilDone } from "./api.js";
import { ago, h } from "./format.js";

export class Remotes {
  constructor(root) {
    this.root = root;
    this.cards = new Map();
    this.config = new Map(); // name -> settings from GET /api/v1/remotes (transport, kind, ...)
  }

  setConfig(remotes) {
    for (const remote of remotes) this.config.set(remote.name, remote.config ?? {});
  }

  render(remotes) {
    const seen = new Set();
    for (const remote of remotes) {
      seen.add(remote.name);
      let card = this.cards.get(remote.name);
      if (!card) {
        card = this.makeCard(remote.name);
        this.cards.set(remote.name, card);
        this.root.append(card.node);
      }
      this.fill(card, remote);
    }
    for (const [name, card] of this.cards) {
      if (!seen.has(name)) {
        card.node.remove();
        this.cards.delete(name);
      }
    }
  }

  makeCard(name) {
    const card = {
      state: h("span", { class: "pill" }),
      fields: h("dl"),
      job: h("span", { class: "muted", role: "status" }),
      held: false,
    };
    card.sync = h("button", { type: "button", onclick: () => this.sync(name, card) }, "Sync now");
    card.hold = h("button", { type: "button", onclick: () => this.toggle(name, card) }, "Pause");
    card.node = h(
      "article",
      { class: "card remote", dataset: { remote: name } },
      h("h3", {}, h("span", { class: "name" }, name), card.state),
      card.fields,
      h("div", { class: "actions" }, card.sync, card.hold, card.job),
    );
    return card;
  }

  fill(card, remote) {
    const config = this.config.get(remote.name) ?? {};
    card.state.textContent = remote.state;
    card.state.className = `pill state-${remote.state}`;
    card.held = Boolean(remote.held);
    card.hold.textContent = card.held ? "Resume" : "Pause";
    const watch = remote.watch_mode ?? config.watch;
    const transport = remote.transport ?? config.transport;
    const rtt = remote.round_trip_ms;
    const link = rtt === null || rtt === undefined ? "" : ` · ${rtt < 10 ? rtt.toFixed(2) : Math.round(rtt)} ms round trip`;
    const rows = [
      ["Transport", transport && `${transport}${link}`],
      ["Watch", watch && (remote.watch_reason ? `${watch} (${remote.watch_reason})` : watch)],
      ["Last pass", remote.last_pass_at && `${ago(remote.last_pass_at)} · ${remote.last_pass_result ?? "?"}`],
      ["Queue", `${remote.queued ?? 0} queued · ${remote.settling ?? 0} settling`],
      ["Landed", `${remote.landed_files ?? 0} files${remote.failed_files ? ` · ${remote.failed_files} failed` : ""}`],
      ["Paused", remote.paused],
      ["Error", remote.last_error],
    ];
    card.fields.replaceChildren(
      ...rows
        .filter(([, value]) => value !== null && value !== undefined && value !== "")
        .flatMap(([label, value]) => [h("dt", {}, label), h("dd", { class: label === "Error" ? "error" : "" }, value)]),
    );
  }

  async sync(name, card) {
    card.sync.disabled = true;
    try {
      const { job } = await post(`/api/v1/remotes/${encodeURIComponent(name)}/sync`);
      await untilDone(job, (j) => {
        card.job.textContent = `sync ${j.state}${j.error ? `: ${j.error}` : ""}`;
      });
    } catch (error) {
      card.job.textContent = `sync refused: ${error.message}`;
    } finally {
      card.sync.disabled = false;
    }
  }

  async toggle(name, card) {
    const verb = card.held ? "resume" : "pause";
    card.hold.disabled = true;
    try {
      const answer = await post(`/api/v1/remotes/${encodeURIComponent(name)}/${verb}`);
      card.held = answer.held;
      card.hold.textContent = card.held ? "Resume" : "Pause";
      card.job.textContent = card.held ? "paused" : "resumed";
    } catch (error) {
      card.job.textContent = `${verb} refused: ${error.message}`;
    } finally {
      card.hold.disabled = false;
    }
  }
}

/** Sinks, when /status has them (a list of objects with at least a name): every plain field shown. */
export function renderSinks(box, root, sinks) {
  box.hidden = !Array.isArray(sinks) || sinks.length === 0;
  if (box.hidden) return;
  root.replaceChildren(
    ...sinks.map((sink) =>
      h(
        "article",
        { class: "card sink" },
        h("h3", {}, sink.name ?? "sink", sink.state ? h("span", { class: `pill state-${sink.state}` }, sink.state) : null),
        h(
          "dl",
          {},
          Object.entries(sink)
            .filter(([key, value]) => key !== "name" && key !== "state" && (value === null || typeof value !== "object"))
            .flatMap(([key, value]) => [h("dt", {}, key.replaceAll("_", " ")), h("dd", {}, String(value ?? "–"))]),
        ),
      ),
    ),
  );
}

/** The workflow stages, when /status has a `workflow` section: per stage its counts by state, whether it
 * is paused (and why), the oldest waiting file and the latest failures. */
export function renderWorkflow(box, root, workflow) {
  const stages = Object.entries(workflow?.stages ?? {});
  box.hidden = stages.length === 0;
  if (box.hidden) return;
  root.replaceChildren(
    ...stages.map(([name, stage]) =>
      h(
        "article",
        { class: "card stage" },
        h("h3", {}, name, stage.paused ? h("span", { class: "pill state-backoff" }, "paused") : null),
        h(
          "dl",
          {},
          ...Object.entries(stage.counts ?? {}).flatMap(([state, count]) => [h("dt", {}, state), h("dd", {}, String(count))]),
          ...(stage.paused ? [h("dt", {}, "why"), h("dd", {}, String(stage.paused))] : []),
          ...(stage.oldest_waiting ? [h("dt", {}, "oldest waiting"), h("dd", {}, String(stage.oldest_waiting))] : []),
        ),
        ...(stage.failures ?? []).slice(0, 3).map((f) => h("p", { class: "error" }, `${f.remote}: ${f.path}: ${f.error}`)),
      ),
    ),
  );
}
