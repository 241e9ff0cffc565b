// The full image or video and its generation metadata (GET /api/v1/files/{id}), in a <dialog>.

import { fileUrl, get } from "./api.js";
import { basename, bytes, h, isVideo } from "./format.js";

export class Viewer {
  constructor(dialog) {
    this.dialog = dialog;
    this.media = dialog.querySelector("#viewer-media");
    this.title = dialog.querySelector("#viewer-title");
    this.meta = dialog.querySelector("#viewer-meta");
    this.link = dialog.querySelector("#viewer-open");
    dialog.addEventListener("close", () => this.media.replaceChildren()); // stop a video
    dialog.addEventListener("click", (event) => event.target === dialog && dialog.close());
  }

  async open(id) {
    const { file } = await get(fileUrl(id));
    const src = fileUrl(id, "content");
    this.title.textContent = basename(file.path);
    this.link.href = src;
    this.media.replaceChildren(
      isVideo(file.path)
        ? h("video", { src, controls: true, autoplay: true, muted: true, loop: true, playsinline: true })
        : h("img", { src, alt: file.prompt ?? basename(file.path) }),
    );
    this.meta.replaceChildren(...metadataRows(file).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
    if (!this.dialog.open) this.dialog.showModal();
  }
}

/** [label, text] pairs of what made the file, and where it came from (pure). */
export function metadataRows(file) {
  const m = file.metadata ?? {};
  const size = m.width && m.height ? `${m.width} × ${m.height}` : null;
  const generator = m.generator ? [m.generator, m.generator_version].filter(Boolean).join(" ") : file.generator;
  const loras = (m.loras ?? []).map((l) => (l.weight === null ? l.name : `${l.name}:${l.weight}`)).join(", ");
  const rows = [
    ["Prompt", m.prompt ?? file.prompt],
    ["Negative", m.negative_prompt],
    ["Model", m.model ?? file.model],
    ["Seed", m.seed],
    ["Steps", m.steps],
    ["CFG", m.cfg],
    ["Sampler", [m.sampler, m.scheduler].filter(Boolean).join(" · ")],
    ["Size", size],
    ["LoRAs", loras],
    ["Generator", generator],
    ["Remote", `${file.remote}: ${file.path}`],
    ["Library", file.library_path],
    ["File size", bytes(file.size)],
    ["Landed", file.landed_at],
  ];
  return rows.filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) => [k, String(v)]);
}
