"""The report's document model: a list of blocks, rendered as markdown and as self-contained HTML.

A block is a tuple: ``("h", level, text)``, ``("p", text)``, ``("ul", [items])``, ``("table", header, rows)``,
``("pre", text)`` or ``("img", png file name, caption)``; text may hold ``**bold**``, ``*italic*`` and
```code```. :mod:`report.render` writes the narrative as blocks (from the results only); this module knows
nothing about the study.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path


def markdown_blocks(text: str) -> list[tuple]:
    """Plain markdown text (paragraphs and pipe tables, as quant.sensitivity_report.format_table writes) as blocks."""
    blocks = []
    for chunk in text.strip().split("\n\n"):
        lines = chunk.strip().splitlines()
        if lines and all(line.startswith("|") for line in lines) and len(lines) >= 2:
            cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
            blocks.append(("table", cells[0], [row for row in cells[2:]]))
        elif lines:
            blocks.append(("p", " ".join(lines)))
    return blocks


# ------------------------------------------------------------------ rendering


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + block[2])
        elif kind == "p":
            out.append(block[1])
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "table":
            header, rows = block[1], block[2]
            lines = ["| " + " | ".join(map(_md_cell, header)) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]
            out.append("\n".join(lines))
        elif kind == "pre":
            out.append("```\n" + block[1] + "\n```")
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1]})\n\n*{block[2]}*")
    return "\n\n".join(out) + "\n"


_INLINE = [(re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"), (re.compile(r"`(.+?)`"), r"<code>\1</code>"),
           (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"<em>\1</em>")]


def _inline_html(text: str) -> str:
    text = html.escape(str(text), quote=False)
    for pattern, repl in _INLINE:
        text = pattern.sub(repl, text)
    return text


CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 6px;
text-align:left}th{background:#f2f2f2}pre{background:#f7f7f7;padding:0.8em;overflow-x:auto;font-size:0.85em}
img{max-width:100%;border:1px solid #eee}figure{margin:1.5em 0}figcaption{font-style:italic;color:#555}"""


def to_html(blocks, image_dir) -> str:
    """Self-contained HTML: images read from ``image_dir`` and embedded as base64."""
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append(f"<h{block[1]}>{_inline_html(block[2])}</h{block[1]}>")
        elif kind == "p":
            out.append(f"<p>{_inline_html(block[1])}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{_inline_html(c)}</th>" for c in block[1])
            body = "".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>" for row in block[2])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "pre":
            out.append(f"<pre>{html.escape(block[1], quote=False)}</pre>")
        elif kind == "img":
            data = base64.b64encode((Path(image_dir) / block[1]).read_bytes()).decode("ascii")
            out.append(f'<figure><img alt="{html.escape(block[2])}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{_inline_html(block[2])}</figcaption></figure>")
    title = next((b[2] for b in blocks if b[0] == "h"), "report")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")
