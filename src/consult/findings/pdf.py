"""The report as an A4 PDF a ministry can print, from the same HTML and its print stylesheet.

WeasyPrint lays the HTML out with CSS paged media: the cover, the table of contents with page
numbers (`target-counter`), the running header and page numbers, table headers repeated on every
page, headings kept with what follows. The print rules live in the HTML's own stylesheet
(`html.STYLE`), so a browser's "print to PDF" follows them too. WeasyPrint is imported here only:
it costs about a second, which nothing else should pay.
"""

from __future__ import annotations

import logging
from pathlib import Path


class PdfUnavailable(RuntimeError):
    """The PDF renderer cannot run on this machine (its system libraries are missing)."""


def write_pdf(html_path: Path, pdf_path: Path) -> Path:
    """Render the report at `html_path` (its charts are inline SVG) to `pdf_path`."""
    try:
        from weasyprint import HTML
    except OSError as exc:  # WeasyPrint loads Pango through cffi when imported
        raise PdfUnavailable(f"cannot write PDF: {exc}. Install Pango (Debian: apt-get install "
                             "libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-core)") from None
    for name in ("weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    HTML(filename=str(html_path), base_url=str(html_path.parent)).write_pdf(str(pdf_path))
    return pdf_path
