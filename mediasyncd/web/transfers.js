// Live transfers from the status messages: per remote a total bar, per file a bar, its rate and a
// smoothed ETA (eta.js). Rows are kept by key and updated in place, four times a second.

import { EtaSmoother } from "./eta.js";
import { basename, bytes, duration, h, rate } from "./format.js";

export class Transfers {
  constructor(root) {
    this.root = root;
    this.rows = new Map(); // key -> {node, bar, text, eta: EtaSmoother}
    this.empty = h("p", { class: "muted" }, "Nothing in flight.");
    root.replaceChildren(this.empty);
  }

  render(remotes, now = performance.now() / 1000) {
    const seen = new Set();
    const order = [];
    for (const remote of remotes) {
      const files = remote.in_flight ?? [];
      if (files.length === 0) continue;
      const size = files.reduce((sum, f) => sum + (f.size ?? 0), 0);
      const done = files.reduce((sum, f) => sum + (f.bytes_done ?? 0), 0);
      const speed = files.reduce((sum, f) => sum + (f.rate_bps ?? 0), 0);
      const total = this.row(`remote:${remote.name}`, seen, true);
      const more = remote.queued ? ` · ${remote.queued} queued` : "";
      this.fill(total, `${remote.name}: ${files.length} file(s)${more}`, done, size, speed, now);
      order.push(total.node);
      for (const file of files) {
        const row = this.row(`file:${remote.name}:${file.path}`, seen, false);
        row.node.title = file.path;
        this.fill(row, basename(file.path), file.bytes_done, file.size, file.rate_bps, now);
        order.push(row.node);
      }
    }
    for (const [key, row] of this.rows) {
      if (!seen.has(key)) {
        row.node.remove();
        this.rows.delete(key);
      }
    }
    if (order.length === 0) this.root.replaceChildren(this.empty);
    else if (order.some((node, i) => this.root.children[i] !== node) || this.root.children.length !== order.length) {
      this.root.replaceChildren(...order);
    }
  }

  row(key, seen, isTotal) {
    seen.add(key);
    let row = this.rows.get(key);
    if (!row) {
      row = { bar: h("progress", { max: 1, value: 0 }), name: h("span", { class: "name" }), text: h("span") };
      row.node = h("div", { class: isTotal ? "transfer remote-total" : "transfer" }, row.name, row.text, row.bar);
      row.eta = new EtaSmoother();
      this.rows.set(key, row);
    }
    return row;
  }

  fill(row, label, done, size, speed, now) {
    row.name.textContent = label;
    row.bar.max = Math.max(size, 1);
    row.bar.value = Math.min(done, size);
    const eta = row.eta.update(size - done, speed, now);
    row.text.textContent = `${bytes(done)} / ${bytes(size)} · ${rate(speed)} · ETA ${duration(eta)}`;
  }
}
