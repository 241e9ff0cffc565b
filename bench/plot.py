"""A bar chart of the run, drawn with Pillow (already a dependency): one panel per link.

Each group is one figure; bars show each tool relative to rsync (rsync = 1), so throughput (higher is
better) and seconds (lower is better) share an axis; the number on each bar is the figure itself.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from bench.report import Row, fmt, link_rows
from bench.scenarios import LinkResult

GROUPS = (
    ("PNG initial pull", "MB/s"),
    ("MANY initial pull", "files/s"),
    ("BIG initial pull", "MB/s"),
    ("MANY nothing-new pass¹", "s"),
    ("MANY incremental (+50 PNGs)", "s"),
)
LABELS = (
    "PNG MB/s (up)",
    "MANY files/s (up)",
    "BIG MB/s (up)",
    "MANY nothing-new s (down)",
    "MANY +50 PNGs s (down)",
)
CAP = 4.0  # bars taller than this many times rsync are cut (the label still says the figure)
COLOURS = {"mediasyncd": (31, 119, 180), "rsync": (127, 127, 127), "rclone": (255, 127, 14)}
WIDTH, PANEL, MARGIN_L, MARGIN_R, TOP, BOTTOM = 1100, 340, 60, 20, 40, 50


def draw(results: list[LinkResult], tools: list[str], path: Path) -> None:
    image = Image.new("RGB", (WIDTH, PANEL * len(results) + 40), "white")
    d = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    bold = ImageFont.load_default(size=15)
    x = MARGIN_L
    for tool in tools:  # legend
        d.rectangle((x, 12, x + 14, 26), fill=COLOURS.get(tool, (60, 60, 60)))
        d.text((x + 20, 11), tool, fill="black", font=font)
        x += 130
    d.text(
        (x, 11),
        "bars: each figure relative to rsync's (rsync = 1, cut at 4x); labels: the figure; (up) higher is better",
        fill="black",
        font=font,
    )
    for n, result in enumerate(results):
        _panel(d, result, tools, 40 + n * PANEL, font, bold)
    image.save(path, optimize=True)


def _panel(
    d: ImageDraw.ImageDraw,
    result: LinkResult,
    tools: list[str],
    y0: int,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    bold: ImageFont.FreeTypeFont | ImageFont.ImageFont,
) -> None:
    rows = {(r.figure, r.unit): r for r in link_rows(result, tools)}
    groups: list[tuple[str, Row]] = [
        (label, rows[key]) for key, label in zip(GROUPS, LABELS, strict=True) if key in rows
    ]
    rel = {
        (label, t): (
            v / base if (v := row.values.get(t)) is not None and (base := row.values.get("rsync")) else None
        )
        for label, row in groups
        for t in tools
    }
    top = min(max([v for v in rel.values() if v is not None] + [1.0]), CAP) * 1.15
    plot_top, plot_bottom = y0 + TOP, y0 + PANEL - BOTTOM
    height = plot_bottom - plot_top

    def y_of(value: float) -> float:
        return plot_bottom - height * value / top

    d.text((MARGIN_L, y0 + 8), result.label, fill="black", font=bold)
    step = 0.5 if top <= 4 else 1.0 if top <= 8 else 2.0
    tick = 0.0
    while tick <= top:
        y = y_of(tick)
        d.line((MARGIN_L, y, WIDTH - MARGIN_R, y), fill=(225, 225, 225))
        d.text((MARGIN_L - 8, y), f"{tick:g}x", fill="black", font=font, anchor="rm")
        tick += step
    d.line((MARGIN_L, y_of(1.0), WIDTH - MARGIN_R, y_of(1.0)), fill=(90, 90, 90), width=1)
    if not groups:
        return
    group_w = (WIDTH - MARGIN_L - MARGIN_R) / len(groups)
    bar_w = group_w * 0.8 / len(tools)
    for g, (label, row) in enumerate(groups):
        gx = MARGIN_L + g * group_w + group_w * 0.1
        for i, tool in enumerate(tools):
            value = rel[(label, tool)]
            if value is None:
                continue
            x0, value = gx + i * bar_w, min(value, CAP)
            d.rectangle(
                (x0 + 2, y_of(value), x0 + bar_w - 2, plot_bottom), fill=COLOURS.get(tool, (60, 60, 60))
            )
            d.text(
                (x0 + bar_w / 2, y_of(value) - 3), fmt(row.values[tool]), fill="black", font=font, anchor="mb"
            )
        d.text((gx + group_w * 0.4, plot_bottom + 8), label, fill="black", font=font, anchor="mt")
