"""RedisIndex: the knowledge base in Redis, so every worker on every host answers from the same one.

Redis holds the truth, under the store's prefix (`?prefix=` in BOTKIT_STORE, default `botkit:`):

- `<prefix>kb:doc:<id>`: a hash per document: `document` (JSON), `passages` (JSON), `vectors` (float32 bytes);
- `<prefix>kb:docs`: the set of document ids; `<prefix>kb:meta`: a hash (the embedder, ...);
- `<prefix>kb:version`: a counter every write increments, in the same MULTI as the write;
- `<prefix>kb:gaps`: a list of unanswered questions (JSON), newest first, capped at GAPS_KEPT.

Each process searches a `SQLiteIndex` in its own memory (FTS5 and numpy, as on SQLite), rebuilt from Redis
when `kb:version` moved: one GET per search, and a knowledge base of 10k passages reloads in well under a
second. A sync on any host therefore reaches every worker at its next question.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

import numpy as np

from botkit.config import ConfigError
from botkit.knowledge.documents import Document, Passage
from botkit.knowledge.index import GAPS_KEPT, Gap, SQLiteIndex


class RedisIndex:
    def __init__(self, url: str) -> None:
        try:
            import redis
        except ImportError:
            raise ConfigError("BOTKIT_STORE is a Redis URL: install botkit[redis] to use it.") from None
        from botkit.store.redis import split_options

        client_url, options = split_options(url)
        self.prefix = options.get("prefix", "botkit:") + "kb:"
        self._redis = redis.Redis.from_url(client_url)
        self._local = SQLiteIndex(":memory:")
        self._version: bytes | None = None
        self._lock = threading.Lock()

    # the local copy -----------------------------------------------------------------------------------

    def _fresh(self) -> SQLiteIndex:
        """The local index, rebuilt first when Redis' version moved."""
        version = self._redis.get(self.prefix + "version")
        with self._lock:
            if version != self._version or self._version is None:
                self._rebuild()
                self._version = version
            return self._local

    def _rebuild(self) -> None:
        ids = sorted(m.decode() for m in self._redis.smembers(self.prefix + "docs"))
        pipe = self._redis.pipeline(transaction=False)
        for doc_id in ids:
            pipe.hgetall(self._key(doc_id))
        local = SQLiteIndex(":memory:")
        for fields in pipe.execute():
            if not fields:
                continue
            document = Document.from_json(json.loads(fields[b"document"]))
            passages = [Passage(**p) for p in json.loads(fields[b"passages"])]
            raw = fields.get(b"vectors")
            vectors = np.frombuffer(raw, np.float32).reshape(len(passages), -1) if raw and passages else None
            local.put(document, passages, vectors)
        self._local = local  # the old copy closes when the last search holding it is done with it

    def _key(self, doc_id: str) -> str:
        return f"{self.prefix}doc:{doc_id}"

    # writing ------------------------------------------------------------------------------------------

    def put(self, document: Document, passages: Sequence[Passage], vectors: np.ndarray | None) -> None:
        fields = {"document": json.dumps(document.to_json()),
                  "passages": json.dumps([{k: v for k, v in p.__dict__.items() if k != "extra"} for p in passages])}
        if vectors is not None:
            fields["vectors"] = np.ascontiguousarray(vectors, np.float32).tobytes()
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self._key(document.id))
        pipe.hset(self._key(document.id), mapping=fields)
        pipe.sadd(self.prefix + "docs", document.id)
        pipe.incr(self.prefix + "version")
        pipe.execute()

    def remove(self, document_id: str) -> bool:
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self._key(document_id))
        pipe.srem(self.prefix + "docs", document_id)
        pipe.incr(self.prefix + "version")
        deleted, _, _ = pipe.execute()
        return bool(deleted)

    def set_meta(self, key: str, value: str) -> None:
        self._redis.hset(self.prefix + "meta", key, value)

    def add_gap(self, gap: Gap) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.lpush(self.prefix + "gaps", json.dumps(gap.__dict__))
        pipe.ltrim(self.prefix + "gaps", 0, GAPS_KEPT - 1)
        pipe.execute()

    def clear_gaps(self) -> int:
        pipe = self._redis.pipeline(transaction=True)
        pipe.llen(self.prefix + "gaps")
        pipe.delete(self.prefix + "gaps")
        return int(pipe.execute()[0])

    # reading ------------------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        value = self._redis.hget(self.prefix + "meta", key)
        return value.decode() if value is not None else None

    def document(self, document_id: str) -> Document | None:
        raw = self._redis.hget(self._key(document_id), "document")
        return Document.from_json(json.loads(raw)) if raw else None

    def snapshot(self) -> SQLiteIndex:
        """The local copy, fresh: one search reads one copy, however Redis changes meanwhile."""
        return self._fresh()

    def documents(self) -> list[Document]:
        return self._fresh().documents()

    def passages(self, keys: Sequence[int]) -> list[Passage]:
        return self._local.passages(keys)

    def keyword(self, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
        return self._fresh().keyword(terms, limit)

    def coverage(self, terms: Sequence[str], key: int) -> float:
        return self._local.coverage(terms, key)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        return self._fresh().vectors()

    def gaps(self, limit: int = 100) -> list[Gap]:
        return [Gap(**json.loads(raw)) for raw in self._redis.lrange(self.prefix + "gaps", 0, limit - 1)]

    def stats(self) -> dict[str, int]:
        figures = self._fresh().stats()
        figures["gaps"] = int(self._redis.llen(self.prefix + "gaps"))
        return figures

    def close(self) -> None:
        self._redis.close()
        self._local.close()
