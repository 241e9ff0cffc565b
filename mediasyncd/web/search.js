// Search over prompts, models, generators and paths (GET /api/v1/files?q=), results as thumbnails.

import { get } from "./api.js";
import { tile } from "./gallery.js";

export class Search {
  constructor({ form, input, box, results, count, close, gallery }, { onOpen, limit = 120 }) {
    Object.assign(this, { input, box, results, count, gallery, onOpen, limit });
    this.asked = 0;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.run();
    });
    let timer = null;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.run(), 350);
    });
    close.addEventListener("click", () => {
      input.value = "";
      this.run();
    });
  }

  async run() {
    const q = this.input.value.trim();
    const asked = ++this.asked;
    if (!q) {
      this.box.hidden = true;
      this.gallery.hidden = false;
      return;
    }
    const page = await get(`/api/v1/files?${new URLSearchParams({ q, limit: String(this.limit) })}`);
    if (asked !== this.asked) return; // a newer search is on its way
    const more = page.next_cursor ? "+" : "";
    this.count.textContent = page.files.length ? `${page.files.length}${more} found for “${q}”` : `Nothing found for “${q}”.`;
    this.results.replaceChildren(...page.files.map((file) => tile(file, this.onOpen).node));
    this.box.hidden = false;
    this.gallery.hidden = true;
  }
}
