"""Documents and passages: what the knowledge base holds, read from files and cut into passages.

A `Document` is one article, page or FAQ answer: an id (stable across re-adds, so adding a file again replaces
it), a title, a link when it has one, a language, and its text. `split()` cuts its text into `Passage`s of at
most ~`max_words` words along headings and paragraphs; each passage keeps its document's title (and the
heading it sits under), link and language, so an answer can always name its source.

Readers, by file suffix: Markdown and text (`.md`, `.markdown`, `.txt`), HTML (`.html`, `.htm`: selectolax),
PDF (`.pdf`: pypdf), and FAQ files (`.csv` with `question` and `answer` columns, `.json` as a list of
`{"question", "answer"}` objects): one document per pair. `read_path()` walks folders. A file that cannot be
read raises `DocumentError` with one sentence saying which and why.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".html": "html", ".htm": "html",
            ".pdf": "pdf", ".csv": "faq", ".json": "faq"}
KINDS = ("article", "faq", "handoff")  # handoff: example questions a human should take


class DocumentError(Exception):
    """A source cannot be read; the message is one sentence naming it and saying why."""


@dataclass
class Document:
    """One source document. `kind` is "article", "faq" or "handoff"; `updated_at` is epoch seconds."""

    id: str
    title: str
    text: str
    link: str | None = None
    language: str | None = None
    source: str = ""  # where it came from: a file path, "helpcenter:<portal>", ...
    kind: str = "article"
    updated_at: float = 0.0
    description: str | None = None

    @property
    def digest(self) -> str:
        """What changes when the indexed content changes (re-adding an unchanged file skips the embedding)."""
        raw = "\x00".join([self.title, self.text, self.link or "", self.language or "", self.kind,
                           self.description or ""])
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "text": self.text, "link": self.link,
                "language": self.language, "source": self.source, "kind": self.kind,
                "updated_at": self.updated_at, "description": self.description}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Document:
        return cls(**{k: data.get(k) for k in ("id", "title", "text", "link", "language", "source", "kind",
                                               "updated_at", "description")})


@dataclass
class Passage:
    """A piece of a document small enough to embed and to quote: its heading path, text and source."""

    document_id: str
    position: int
    title: str
    text: str
    link: str | None = None
    language: str | None = None
    kind: str = "article"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def for_embedding(self) -> str:
        return f"{self.title}\n{self.text}" if self.title else self.text


# splitting --------------------------------------------------------------------------------------------

_HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*#*\s*$")


def _sections(text: str) -> Iterator[tuple[str, list[str]]]:
    """(heading, paragraphs) in order; Markdown headings start sections, blank lines end paragraphs."""
    heading, paragraphs, lines = "", [], []
    for line in text.splitlines():
        match = _HEADING.match(line)
        if match or not line.strip():
            if lines:
                paragraphs.append(" ".join(lines))
                lines = []
            if match:
                if paragraphs:
                    yield heading, paragraphs
                heading, paragraphs = match.group(2).strip(), []
            continue
        lines.append(line.strip())
    if lines:
        paragraphs.append(" ".join(lines))
    if paragraphs:
        yield heading, paragraphs


def _pieces(paragraph: str, max_words: int) -> Iterator[str]:
    """A paragraph longer than max_words, cut at sentence ends (or at max_words when a sentence is longer)."""
    words = paragraph.split()
    if len(words) <= max_words:
        yield paragraph
        return
    sentences = re.split(r"(?<=[.!?])\s+", paragraph)
    current: list[str] = []
    for sentence in sentences:
        sentence_words = sentence.split()
        while len(sentence_words) > max_words:
            if current:
                yield " ".join(current)
                current = []
            yield " ".join(sentence_words[:max_words])
            sentence_words = sentence_words[max_words:]
        if len(current) + len(sentence_words) > max_words and current:
            yield " ".join(current)
            current = []
        current.extend(sentence_words)
    if current:
        yield " ".join(current)


def split(document: Document, max_words: int = 120) -> list[Passage]:
    """The document's passages: paragraphs packed up to max_words, never across a heading. An FAQ answer
    keeps its question as the title of each of its passages."""
    passages: list[Passage] = []
    if document.kind == "handoff":  # example questions: one passage each
        lines = [line.strip() for line in document.text.splitlines() if line.strip()]
        return [Passage(document.id, n, line, "", document.link, document.language, "handoff")
                for n, line in enumerate(lines)]

    def add(heading: str, text: str) -> None:
        title = document.title if not heading or heading == document.title else f"{document.title} › {heading}"
        passages.append(Passage(document.id, len(passages), title, text, document.link, document.language,
                                document.kind))

    for heading, paragraphs in _sections(document.text):
        current: list[str] = []
        count = 0
        for paragraph in paragraphs:
            for piece in _pieces(paragraph, max_words):
                n = len(piece.split())
                if current and count + n > max_words:
                    add(heading, "\n".join(current))
                    current, count = [], 0
                current.append(piece)
                count += n
        if current:
            add(heading, "\n".join(current))
    if not passages and document.title:
        add("", document.title)
    return passages


# reading files ------------------------------------------------------------------------------------------


def read_path(path: str | Path, *, language: str | None = None, link: str | None = None) -> list[Document]:
    """Every document in a file or, recursively, a folder (files of unknown kinds in a folder are skipped)."""
    root = Path(path)
    if root.is_dir():
        found: list[Document] = []
        for child in sorted(p for p in root.rglob("*") if p.is_file()):
            if child.suffix.lower() in SUFFIXES and not any(part.startswith(".") for part in child.parts):
                found.extend(read_file(child, language=language, link=link))
        return found
    if not root.is_file():
        raise DocumentError(f"{root} is neither a file nor a folder.")
    return read_file(root, language=language, link=link)


def read_file(path: Path, *, language: str | None = None, link: str | None = None) -> list[Document]:
    """The documents of one file (one, or one per FAQ pair)."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(sorted(SUFFIXES))
        raise DocumentError(f"{path} is not a kind botkit reads (it reads {known}).")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{path} cannot be read ({exc.strerror}).") from None
    source = str(path)
    doc_id = f"file:{path.resolve()}"
    mtime = path.stat().st_mtime
    if kind == "faq":
        return read_faq(data, path.suffix.lower(), source=source, language=language, updated_at=mtime)
    if kind == "pdf":
        title, text, meta_title = _pdf(data, path)
    elif kind == "html":
        title, text, meta_title = _html(_decode(data, path))
    else:
        text = _decode(data, path)
        title, meta_title = _markdown_title(text), None
    title = meta_title or title or path.stem.replace("_", " ").replace("-", " ").strip()
    return [Document(doc_id, title, text, link=link, language=language, source=source, updated_at=mtime)]


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DocumentError(f"{path} is not UTF-8 text.") from None


def _markdown_title(text: str) -> str | None:
    for line in text.splitlines():
        match = _HEADING.match(line)
        if match and len(match.group(1)) == 1:
            return match.group(2).strip()
        if line.strip():
            return None
    return None


_BLOCKS = ("p", "li", "pre", "blockquote", "td", "th", "dd", "dt")


def _html(html: str) -> tuple[str | None, str, str | None]:
    """Title and text of an HTML page, its headings kept as Markdown headings so sections survive."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    for node in tree.css("script, style, nav, header, footer, noscript, template"):
        node.decompose()
    title_node = tree.css_first("title")
    page_title = title_node.text(strip=True) if title_node else None
    body = tree.body or tree.root
    lines: list[str] = []
    if body is not None:
        for node in body.traverse():
            tag = node.tag
            if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
                lines += ["", "#" * int(tag[1]) + " " + node.text(separator=" ", strip=True), ""]
            elif tag in _BLOCKS and not _inside_block(node):
                text = node.text(separator=" ", strip=True)
                if text:
                    lines += [text, ""]
    text = "\n".join(lines).strip()
    return _markdown_title(text), text, page_title


def _inside_block(node: Any) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in _BLOCKS:
            return True
        parent = parent.parent
    return False


def _pdf(data: bytes, path: Path) -> tuple[str | None, str, str | None]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or None
    except (PdfReadError, ValueError, KeyError) as exc:
        raise DocumentError(f"{path} is not a PDF pypdf can read ({exc}).") from None
    # a PDF's text lines are layout lines: a paragraph is what a blank line ends
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise DocumentError(f"{path} has no text layer (a scanned PDF needs OCR first).")
    return None, text, meta_title


def read_faq(data: bytes | str, suffix: str, *, source: str, language: str | None = None,
             updated_at: float = 0.0) -> list[Document]:
    """An FAQ file: `.csv` with question and answer columns (optional link, language), or `.json`, a list
    of objects with the same keys. One document per pair, its id derived from the question."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    if suffix == ".json":
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise DocumentError(f"{source} is not valid JSON ({exc}).") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise DocumentError(f"{source} must be a JSON list of {{\"question\": ..., \"answer\": ...}} objects.")
    else:
        reader = csv.DictReader(io.StringIO(text))
        fields = {(name or "").strip().lower() for name in reader.fieldnames or []}
        if not {"question", "answer"} <= fields:
            raise DocumentError(f"{source} needs a header row with question and answer columns.")
        rows = [{(k or "").strip().lower(): v for k, v in row.items()} for row in reader]
    documents = []
    for number, row in enumerate(rows, start=1):
        question, answer = str(row.get("question") or "").strip(), str(row.get("answer") or "").strip()
        if not question or not answer:
            raise DocumentError(f"{source}, entry {number}: both a question and an answer are needed.")
        key = hashlib.sha256(question.casefold().encode()).hexdigest()[:16]
        documents.append(Document(f"faq:{source}#{key}", question, answer, link=row.get("link") or None,
                                  language=row.get("language") or language, source=source, kind="faq",
                                  updated_at=updated_at))
    return documents
