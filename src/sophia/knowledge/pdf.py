"""PDF documents (the optional ``sophia[pdf]`` extra): the text of each page, extracted once.

The extracted text is what is stored and cited; ``page_starts`` in the metadata lets each chunk
say which page it begins on.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sophia.errors import DependencyMissing, InvalidRequest
from sophia.knowledge.documents import DEFAULT_SOURCE, Document


def read_pdf(
    data: bytes | Path,
    *,
    id: str,
    title: str = "",
    source: str = DEFAULT_SOURCE,
    metadata: Mapping[str, Any] | None = None,
    url: str | None = None,
) -> Document:
    """A ``pdf`` document from a PDF file or its bytes (needs ``pip install 'sophia[pdf]'``)."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError as exc:
        raise DependencyMissing("pypdf", "pdf", purpose="PDF documents") from exc
    raw = data.read_bytes() if isinstance(data, Path) else data
    try:
        reader = PdfReader(io.BytesIO(raw))
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        info_title = (reader.metadata.title if reader.metadata else None) or ""
    except (PyPdfError, ValueError, OSError) as exc:
        raise InvalidRequest(f"document {id}: not a readable PDF ({exc})") from None
    starts, text = [], ""
    for page in pages:
        if text:
            text += "\n\n"
        starts.append(len(text))
        text += page
    meta = {**(metadata or {}), "page_starts": starts, "pages": len(pages)}
    return Document(id, "pdf", title or str(info_title), text, (), source, meta, url)
