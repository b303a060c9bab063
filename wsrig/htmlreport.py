"""``test_report.html``: the Markdown report as one self-contained page a person keeps.

Why: a CI artifact is opened from a download, without a server and often without the
folder's other files beside it. The page is ``render_markdown``'s text rendered as
GitHub would (CommonMark + GFM tables, markdown-it-py), with every image embedded as a
``data:`` URI, the CSS inline and nothing the page loads from anywhere else: no fonts,
no scripts, no stylesheets. Raw HTML in the Markdown (a finding quoting a frame, say)
is shown as text, never rendered, so nothing in a summary can make the page fetch a URL.
An image whose file is not in the folder becomes a visible "missing: FILE" note rather
than a broken image request. Links to the folder's logs, JUnit and CSV files stay
relative links: they work beside the folder's files and load nothing on opening.
"""

from __future__ import annotations

import base64
import html
import mimetypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

__all__ = ["HTML_NAME", "embed_image", "render_html"]

HTML_NAME = "test_report.html"

_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
                ".webp": "image/webp", ".svg": "image/svg+xml"}  # fmt: skip

_CSS = """
:root { color-scheme: light; }
body { margin: 0; background: #fff; color: #1f2328;
       font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Liberation Sans", "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 12px 32px 48px; }
h1 { font-size: 1.6em; margin: 0.6em 0 0.5em; padding: 0.35em 0.7em; border-left: 6px solid #57606a;
     background: #f6f8fa; border-radius: 4px; }
body.verdict-pass h1 { border-color: #1a7f37; background: #dafbe1; }
body.verdict-fail h1 { border-color: #cf222e; background: #ffebe9; }
body.verdict-invalid h1 { border-color: #9a6700; background: #fff8c5; }
h2 { font-size: 1.3em; margin-top: 2em; padding-bottom: 0.25em; border-bottom: 1px solid #d0d7de; }
a { color: #0969da; }
ul { padding-left: 1.6em; }
li { margin: 0.15em 0; overflow-wrap: break-word; }
table { display: block; width: max-content; max-width: 100%; overflow: auto; border-collapse: collapse;
        margin: 0.4em 0 1.2em; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 9px; text-align: left; vertical-align: top; }
td { max-width: 34em; overflow-wrap: break-word; }
th { background: #f6f8fa; font-weight: 600; }
tbody tr:nth-child(2n) td { background: #f9fafb; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", "DejaVu Sans Mono",
            monospace; font-size: 12px; }
code { background: #eff1f3; padding: 0.1em 0.35em; border-radius: 4px; }
pre { background: #f6f8fa; padding: 8px 12px; overflow-x: auto; border-radius: 4px; }
pre code { background: none; padding: 0; }
.figure { display: block; margin: 0.8em 0 1.4em; }
.figure img { display: block; max-width: 100%; height: auto; border: 1px solid #d0d7de; border-radius: 4px; }
.caption { display: block; color: #57606a; font-size: 13px; margin-top: 0.25em; }
.missing { display: inline-block; padding: 0.3em 0.7em; background: #fff8c5; border: 1px dashed #9a6700;
           border-radius: 4px; font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace;
           font-size: 13px; }
footer { margin-top: 3em; color: #57606a; font-size: 12px; }
"""


def embed_image(path: Path) -> str | None:
    """``data:`` URI of an image file, or None when it is not there (or not an image type)."""
    mime = _IMAGE_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    if not mime or not mime.startswith("image/") or not path.is_file():
        return None
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _local(results: Path, src: str) -> Path | None:
    """The folder's file an image ``src`` names; None for a URL or a path leaving the folder."""
    if not src or "://" in src or src.startswith(("data:", "/", "\\")):
        return None
    path = (results / src).resolve()
    return path if path.is_relative_to(results.resolve()) else None


def _figure(uri: str | None, name: str, alt: str) -> str:
    caption = f'<span class="caption">{html.escape(alt)}</span>' if alt else ""
    if uri is None:
        return f'<span class="figure"><span class="missing">missing: {html.escape(name)}</span>{caption}</span>'
    return f'<span class="figure"><img src="{uri}" alt="{html.escape(alt)}" />{caption}</span>'


def _markdown(results: Path) -> MarkdownIt:
    """CommonMark + GFM tables, raw HTML off, images embedded from ``results``."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")

    def image(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        src = str(token.attrGet("src") or "")
        alt = self.renderInlineAsText(token.children or [], options, env)
        path = _local(results, src)
        return _figure(embed_image(path) if path else None, src, alt)

    md.add_render_rule("image", image)
    return md


def _trend(trend_charts: Sequence[Path]) -> str:
    figures = [_figure(embed_image(p), p.name, p.stem.replace("_", " ")) for p in trend_charts]
    return '<h2 id="trend">Trend</h2>\n<p>' + "\n".join(figures) + "</p>\n"


def render_html(summary: dict[str, Any], results: Path, markdown: str, trend_charts: list[Path] | None = None) -> str:
    """The report page: the Markdown report's text (``wsrig.report.render_markdown``) as HTML,
    images from ``results`` embedded.

    ``trend_charts``: PNG files (anywhere) shown in a section "Trend" before the
    environment; none, no section.
    """
    body = _markdown(results).render(markdown)
    if trend_charts:
        trend = _trend(trend_charts)
        at = min((i for i in (body.find("<h2>Container log errors</h2>"), body.find("<h2>Environment</h2>")) if i >= 0),
                 default=len(body))  # fmt: skip
        body = body[:at] + trend + body[at:]
    verdict = str(summary.get("verdict", "")).lower()
    title = f"wsrig {summary.get('suite_run_id', '')}: {verdict.upper()}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8" />\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1" />\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f'<body class="verdict-{html.escape(verdict)}">\n<main>\n{body}'
        "<footer>Written by wsrig from test_summary.json; charts and screenshots are embedded, "
        "links point to files in the results folder.</footer>\n</main>\n</body>\n</html>\n"
    )
