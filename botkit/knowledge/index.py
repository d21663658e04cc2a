"""The index: documents, their passages, keyword search (SQLite FTS5, BM25), vectors, and unanswered questions.

One small interface, two backends, chosen like the store (`index_from_url`):

- `SQLiteIndex`: tables in the bot's SQLite file, beside the store's (`kb_documents`, `kb_passages`, the FTS5
  table `kb_fts`, `kb_vectors`, `kb_gaps`, `kb_meta`), on a connection of its own. `botkit kb add` in one
  process and the worker in another share it: every write bumps `kb_meta.version`, and a reader reloads
  its cached vectors when the version moved.
- `RedisIndex` (redis_index.py): Redis holds the documents; each process keeps a `SQLiteIndex` in memory
  built from them, rebuilt when Redis' version moved, so every worker on every host answers from one
  knowledge base and a sync on any host reaches all.

The index is synchronous (sqlite3, redis-py) and thread-safe; the handler calls it through
`asyncio.to_thread`, never on the event loop. Dense search is exact cosine with numpy over all vectors:
10k passages x 384 float32 is 15 MB and ~1 ms a query (bench/kb_eval.py).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import numpy as np

from botkit.config import ConfigError
from botkit.knowledge.documents import Document, Passage

GAPS_KEPT = 10_000

# Words that match nearly every passage: they only slow an OR query down and BM25 gives them ~0 weight.
STOPWORDS = frozenset("""a an and are as at be but by can could do does for from had has have how i i'm if in is it
its me my of on or our so than that the their them then there these they this to was we were what when where which
who why will with would you your yours im""".split())
_WORD = re.compile(r"\w+")


def query_terms(text: str) -> list[str]:
    """The words of a question as FTS5 terms: lowercase, stopwords dropped when other words remain."""
    words = [w for w in _WORD.findall(text.casefold()) if not w.isdigit() or len(w) > 1]
    kept = [w for w in words if w not in STOPWORDS]
    return list(dict.fromkeys(kept or words))


def match_expression(terms: Sequence[str]) -> str:
    """`"a" OR "b"`: each term quoted, so no word of a question is read as FTS5 syntax."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


@dataclass
class Gap:
    """A question the knowledge base could not answer, or that went to a human."""

    question: str
    reason: str  # "unanswered" (nothing relevant) or "human" (a question for a person)
    score: float | None = None
    conversation: str | None = None  # "account/conversation"
    at: float = 0.0


class Index(Protocol):
    """What the knowledge base needs from storage. Passage keys are ints valid within one process."""

    def snapshot(self) -> Index:
        """What one search reads: passage keys from one call stay valid for the next."""
        ...

    def put(self, document: Document, passages: Sequence[Passage], vectors: np.ndarray | None) -> None: ...
    def remove(self, document_id: str) -> bool: ...
    def document(self, document_id: str) -> Document | None: ...
    def documents(self) -> list[Document]: ...
    def passages(self, keys: Sequence[int]) -> list[Passage]: ...
    def keyword(self, terms: Sequence[str], limit: int) -> list[tuple[int, float]]: ...
    def coverage(self, terms: Sequence[str], key: int) -> float: ...
    def vectors(self) -> tuple[np.ndarray, np.ndarray]: ...
    def meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def add_gap(self, gap: Gap) -> None: ...
    def gaps(self, limit: int = 100) -> list[Gap]: ...
    def clear_gaps(self) -> int: ...
    def stats(self) -> dict[str, int]: ...
    def close(self) -> None: ...


SCHEMA = """
CREATE TABLE IF NOT EXISTS kb_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kb_documents (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, digest TEXT NOT NULL, updated_at REAL NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kb_passages (
    id INTEGER PRIMARY KEY, document_id TEXT NOT NULL, position INTEGER NOT NULL, title TEXT NOT NULL,
    text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS kb_passages_document ON kb_passages (document_id);
CREATE VIRTUAL TABLE IF NOT EXISTS kb_fts USING fts5(title, text, tokenize='porter unicode61 remove_diacritics 2');
CREATE TABLE IF NOT EXISTS kb_vectors (passage_id INTEGER PRIMARY KEY, vector BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS kb_gaps (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, question TEXT NOT NULL, reason TEXT NOT NULL, score REAL,
    conversation TEXT);
"""

# BM25 column weights: a match in a passage's title (its document's title, an FAQ's question) counts double.
BM25 = "bm25(kb_fts, 2.0, 1.0)"


class SQLiteIndex:
    """The index in a SQLite file (`path`), or in memory (`":memory:"`)."""

    def __init__(self, path: str) -> None:
        from botkit.store.sqlite import _create_private  # the store's file: owner-only, whoever creates it first

        self.path = path
        _create_private(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        with self._lock:
            if path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            # another process (the worker, the store's writer) may hold the write lock for a moment
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(SCHEMA)
        self._cache_version: str | None = None
        self._matrix = np.zeros((0, 0), np.float32)
        self._keys = np.zeros(0, np.int64)
        self._df: dict[str, int] = {}

    def snapshot(self) -> SQLiteIndex:
        return self

    # writing ------------------------------------------------------------------------------------------

    def _bump(self) -> None:
        self._db.execute("INSERT INTO kb_meta VALUES ('version', '1') "
                         "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1")

    def put(self, document: Document, passages: Sequence[Passage], vectors: np.ndarray | None) -> None:
        """Add or replace a document with its passages (and one vector per passage, or None)."""
        if vectors is not None and len(vectors) != len(passages):
            raise ValueError("one vector per passage")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._delete(document.id)
                self._db.execute("INSERT INTO kb_documents VALUES (?, ?, ?, ?, ?)",
                                 (document.id, document.kind, document.digest, document.updated_at,
                                  json.dumps(document.to_json())))
                for number, passage in enumerate(passages):
                    cursor = self._db.execute(
                        "INSERT INTO kb_passages (document_id, position, title, text) VALUES (?, ?, ?, ?)",
                        (document.id, passage.position, passage.title, passage.text))
                    key = cursor.lastrowid
                    self._db.execute("INSERT INTO kb_fts (rowid, title, text) VALUES (?, ?, ?)",
                                     (key, passage.title, passage.text))
                    if vectors is not None:
                        self._db.execute("INSERT INTO kb_vectors VALUES (?, ?)",
                                         (key, np.asarray(vectors[number], np.float32).tobytes()))
                self._bump()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _delete(self, document_id: str) -> bool:
        keys = [row[0] for row in self._db.execute("SELECT id FROM kb_passages WHERE document_id = ?",
                                                   (document_id,))]
        for key in keys:
            self._db.execute("DELETE FROM kb_fts WHERE rowid = ?", (key,))
            self._db.execute("DELETE FROM kb_vectors WHERE passage_id = ?", (key,))
        self._db.execute("DELETE FROM kb_passages WHERE document_id = ?", (document_id,))
        return self._db.execute("DELETE FROM kb_documents WHERE id = ?", (document_id,)).rowcount > 0

    def remove(self, document_id: str) -> bool:
        """Remove a document and its passages; False when there was none."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                found = self._delete(document_id)
                if found:
                    self._bump()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return found

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO kb_meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                             (key, value, value))

    def add_gap(self, gap: Gap) -> None:
        with self._lock:
            self._db.execute("INSERT INTO kb_gaps (at, question, reason, score, conversation) VALUES (?, ?, ?, ?, ?)",
                             (gap.at or time.time(), gap.question, gap.reason, gap.score, gap.conversation))
            self._db.execute("DELETE FROM kb_gaps WHERE id <= (SELECT max(id) FROM kb_gaps) - ?", (GAPS_KEPT,))

    def clear_gaps(self) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM kb_gaps").rowcount

    # reading ------------------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kb_meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def document(self, document_id: str) -> Document | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM kb_documents WHERE id = ?", (document_id,)).fetchone()
        return Document.from_json(json.loads(row[0])) if row else None

    def documents(self) -> list[Document]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM kb_documents ORDER BY id").fetchall()
        return [Document.from_json(json.loads(row[0])) for row in rows]

    def digests(self) -> dict[str, tuple[str, float]]:
        """{document id: (digest, updated_at)}: what a sync compares against."""
        with self._lock:
            rows = self._db.execute("SELECT id, digest, updated_at FROM kb_documents").fetchall()
        return {row[0]: (row[1], row[2]) for row in rows}

    def passages(self, keys: Sequence[int]) -> list[Passage]:
        """The passages of these keys, in that order (with their document's link, language and kind)."""
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        with self._lock:
            rows = self._db.execute(
                f"SELECT p.id, p.document_id, p.position, p.title, p.text, d.body FROM kb_passages p "  # noqa: S608
                f"JOIN kb_documents d ON d.id = p.document_id WHERE p.id IN ({marks})", list(keys)).fetchall()
        found = {}
        for key, document_id, position, title, text, body in rows:
            doc = json.loads(body)
            found[key] = Passage(document_id, position, title, text, doc.get("link"), doc.get("language"),
                                 doc.get("kind") or "article", {"key": key, "source": doc.get("source"),
                                                                "document_title": doc.get("title"),
                                                                "description": doc.get("description")})
        return [found[k] for k in keys if k in found]

    def keyword(self, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
        """The best passages by BM25 for any of the terms: (key, score), higher is better."""
        if not terms:
            return []
        with self._lock:
            rows = self._db.execute(f"SELECT rowid, {BM25} AS r FROM kb_fts WHERE kb_fts MATCH ? "  # noqa: S608
                                    "ORDER BY r LIMIT ?", (match_expression(terms), limit)).fetchall()
        return [(key, -score) for key, score in rows]  # FTS5's bm25() is negative: lower is better

    def coverage(self, terms: Sequence[str], key: int) -> float:
        """The share of the question's weight (IDF) that the passage contains, 0..1: how much of what was
        asked this passage speaks of. A word no passage contains weighs most, so an unknown topic scores low."""
        if not terms:
            return 0.0
        with self._lock:
            self._refresh_cache()
            total = self._count()
            weights, found = 0.0, 0.0
            for term in terms:
                expression = match_expression([term])
                df = self._df.get(term)
                if df is None:
                    df = self._db.execute("SELECT count(*) FROM kb_fts WHERE kb_fts MATCH ?",
                                          (expression,)).fetchone()[0]
                    self._df[term] = df
                idf = float(np.log((total - df + 0.5) / (df + 0.5) + 1.0))
                weights += idf
                if df and self._db.execute("SELECT 1 FROM kb_fts WHERE kb_fts MATCH ? AND rowid = ?",
                                           (expression, key)).fetchone():
                    found += idf
        return found / weights if weights else 0.0

    def _count(self) -> int:
        count = self._df.get("\x00count")
        if count is None:
            count = self._df["\x00count"] = self._db.execute("SELECT count(*) FROM kb_passages").fetchone()[0]
        return count

    def _refresh_cache(self) -> None:
        version = self.meta("version")
        if version != self._cache_version:
            self._df = {}
            rows = self._db.execute("SELECT passage_id, vector FROM kb_vectors ORDER BY passage_id").fetchall()
            if rows:
                self._keys = np.array([row[0] for row in rows], np.int64)
                self._matrix = np.vstack([np.frombuffer(row[1], np.float32) for row in rows])
            else:
                self._keys, self._matrix = np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
            self._cache_version = version

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(keys, matrix): every passage's vector, cached until the index changes."""
        with self._lock:
            self._refresh_cache()
            return self._keys, self._matrix

    def gaps(self, limit: int = 100) -> list[Gap]:
        with self._lock:
            rows = self._db.execute("SELECT question, reason, score, conversation, at FROM kb_gaps "
                                    "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [Gap(*row) for row in rows]

    def stats(self) -> dict[str, int]:
        with self._lock:
            one = self._db.execute
            return {
                "documents": one("SELECT count(*) FROM kb_documents").fetchone()[0],
                "passages": one("SELECT count(*) FROM kb_passages").fetchone()[0],
                "vectors": one("SELECT count(*) FROM kb_vectors").fetchone()[0],
                "gaps": one("SELECT count(*) FROM kb_gaps").fetchone()[0],
            }

    def close(self) -> None:
        with self._lock:
            self._db.close()


def index_from_url(url: str) -> Index:
    """The index beside the store BOTKIT_STORE names: its SQLite file, or its Redis."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise ConfigError("BOTKIT_STORE must name a file, e.g. sqlite:///./botkit.db.")
        return SQLiteIndex(path)
    if parts.scheme in ("redis", "rediss", "unix"):
        from botkit.knowledge.redis_index import RedisIndex

        return RedisIndex(url)
    if parts.scheme == "memory":
        return SQLiteIndex(":memory:")
    raise ConfigError("BOTKIT_STORE must be sqlite:///PATH, memory:// or redis://HOST:PORT/DB.")
