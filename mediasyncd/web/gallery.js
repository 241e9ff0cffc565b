// The latest arrivals as tiles. Live: a tile is prepended at `file_synced`, its thumbnail set at
// `file_processed`; at most `max` tiles stay in the page (the oldest go), so 10,000 arrivals in a
// session cost no more than `max`. Older files are paged from GET /api/v1/files with its cursor, one page
// of `max` at a time, while live arrivals are counted until "Back to live".

import { fileUrl, get } from "./api.js";
import { basename, h, isVideo } from "./format.js";

export function tile(file, onOpen) {
  const label = h("span", { class: "placeholder" }, isVideo(file.path) ? "video" : "…");
  const button = h("button", { type: "button", title: file.path, onclick: () => onOpen(file.id) }, label);
  const node = h("figure", { class: "tile", dataset: { id: file.id } }, button, h("figcaption", {}, basename(file.path)));
  const item = { node, button, file, thumb: false };
  if (file.thumbnail) setThumbnail(item);
  return item;
}

export function setThumbnail(item) {
  if (item.thumb) return;
  item.thumb = true;
  const img = h("img", { alt: basename(item.file.path), decoding: "async", src: fileUrl(item.file.id, "thumbnail") });
  img.addEventListener("error", () => {
    item.thumb = false;
    item.button.replaceChildren(h("span", { class: "placeholder" }, isVideo(item.file.path) ? "video" : "no preview"));
  });
  item.button.replaceChildren(img);
}

export class Gallery {
  constructor({ grid, empty, older, newer, latest, note }, { onOpen, max = 120 }) {
    Object.assign(this, { grid, empty, olderButton: older, newerButton: newer, latestButton: latest, note });
    this.onOpen = onOpen;
    this.max = max;
    this.items = new Map(); // file id -> tile, in the page now
    this.live = true;
    this.cursors = []; // browsing: the cursor of each page shown so far (null: the first)
    this.next = null;
    this.missed = 0;
    this.evicted = false;
    older.addEventListener("click", () => this.older());
    newer.addEventListener("click", () => this.newer());
    latest.addEventListener("click", () => this.showLatest());
  }

  /** A `file_synced` event: a new tile on top (live), or one more to see (browsing). */
  arrived(file) {
    if (!this.live) {
      this.missed += 1;
      this.updatePager();
      return;
    }
    const old = this.items.get(file.id);
    if (old) old.node.remove();
    const item = tile(file, this.onOpen);
    this.items.set(file.id, item);
    this.grid.prepend(item.node);
    while (this.items.size > this.max) {
      const last = this.grid.lastElementChild;
      this.items.delete(Number(last.dataset.id));
      last.remove();
      this.evicted = true; // older files exist beyond the page now
    }
    this.empty.hidden = true;
    this.updatePager();
  }

  /** A `file_processed` event: the thumbnail now exists. */
  processed(fileId) {
    const item = this.items.get(fileId);
    if (item) setThumbnail(item);
  }

  async showLatest() {
    this.live = true;
    this.missed = 0;
    this.cursors = [null];
    this.evicted = false;
    this.items.clear();
    this.grid.replaceChildren();
    await this.load(null, true);
  }

  async older() {
    if (this.live) {
      // live arrivals may have pushed files out of the page: page on from a fresh first page
      const first = await get(`/api/v1/files?limit=${this.max}`);
      this.live = false;
      this.cursors = [null];
      this.next = first.next_cursor;
    }
    if (!this.next) return this.updatePager();
    this.cursors.push(this.next);
    await this.load(this.next, false);
  }

  async newer() {
    if (this.cursors.length <= 1) return this.showLatest();
    this.cursors.pop();
    const cursor = this.cursors[this.cursors.length - 1];
    if (cursor === null) return this.showLatest();
    await this.load(cursor, false);
  }

  async load(cursor, keepLive) {
    const query = new URLSearchParams({ limit: String(this.max) });
    if (cursor) query.set("cursor", cursor);
    const page = await get(`/api/v1/files?${query}`);
    this.next = page.next_cursor;
    if (keepLive) {
      // arrivals that came in while the page loaded are on top already; the page fills in below them
      for (const file of page.files) {
        if (this.items.size >= this.max) break;
        if (this.items.has(file.id)) continue;
        const item = tile(file, this.onOpen);
        this.items.set(file.id, item);
        this.grid.append(item.node);
      }
    } else {
      this.items.clear();
      const tiles = page.files.map((file) => tile(file, this.onOpen));
      for (const item of tiles) this.items.set(item.file.id, item);
      this.grid.replaceChildren(...tiles.map((item) => item.node));
    }
    this.empty.hidden = this.items.size > 0;
    this.updatePager();
  }

  updatePager() {
    this.olderButton.hidden = !(this.next || (this.live && this.evicted));
    this.newerButton.hidden = this.live || this.cursors.length <= 2;
    this.latestButton.hidden = this.live;
    this.note.textContent = this.live ? "" : `older files, page ${this.cursors.length}${this.missed ? ` · ${this.missed} new` : ""}`;
  }
}
