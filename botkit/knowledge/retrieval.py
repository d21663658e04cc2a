"""KnowledgeBase: documents in, passages out. Keyword and dense search, fused, with a verdict a bot can act on.

    kb = KnowledgeBase(SQLiteIndex("botkit.db"), MiniLM())
    kb.add(read_path("docs/"))
    found = kb.search("how do I reset my password?")
    found.verdict     # "answer", "human" or "unanswered"
    found.hits[0].passage.title, found.hits[0].passage.link

- Keyword: SQLite FTS5 BM25 over passage titles (weight 2) and texts, the question's words OR-ed.
- Dense: the question's vector against every passage's, exact cosine (numpy).
- Fusion: reciprocal rank fusion, `sum(1 / (RRF_K + rank))` over both lists (Cormack et al., 2009): it needs
  no calibration between BM25 scores and cosines. bench/kb_eval.py measures it against each list alone.
- Verdict: "human" when the best passage is an example of a question for a person (the `botkit:handoff`
  document, seeded with HANDOFF_EXAMPLES; a team adds its own with `botkit kb add --handoff FILE`);
  "unanswered" when the best passage's confidence is under the threshold: the cosine with an embedder
  (each model has its own scale), else the share of the question's weight (IDF) the passage contains.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from botkit.config import ConfigError
from botkit.knowledge.documents import Document, Passage, split
from botkit.knowledge.embeddings import Embedder
from botkit.knowledge.index import Gap, Index, query_terms

RRF_K = 60
DEPTH = 50  # passages taken from each list before fusing
MIN_COVERAGE = 0.5  # keywords only: the best passage must contain half of the question's weight
HANDOFF_DOCUMENT = "botkit:handoff"
HANDOFF_EXAMPLES = """\
I want to talk to a human
Can I speak to a real person?
Let me talk to an agent
Connect me with a customer service representative
I need to speak with someone from your team
Is there a person I can chat with?
Transfer me to a live agent please
Stop the bot, I want a human
I want to make a complaint
I want to file a complaint about your service
This is unacceptable, I am very unhappy with your service
I'm really disappointed and want to complain
Your service is terrible
I want to report a bad experience with an employee
I want to escalate this issue
Who can I complain to?
"""


@dataclass
class Hit:
    """A passage found for a question. `score` is the fused score; `cosine` and `bm25` are None when that
    list did not find the passage; `confidence` is what the verdict compares with the threshold."""

    passage: Passage
    score: float
    bm25: float | None = None
    cosine: float | None = None
    confidence: float = 0.0


@dataclass
class Search:
    question: str
    hits: list[Hit]
    verdict: str  # "answer", "human" or "unanswered"
    threshold: float
    took_ms: float = 0.0

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None

    @property
    def answers(self) -> list[Hit]:
        """The hits that are answers (not hand-off examples), best first."""
        return [h for h in self.hits if h.passage.kind != "handoff"]


@dataclass
class Changes:
    """What an add or a sync did, by document id. `seeded`: botkit's own examples of questions for a person
    (`botkit:handoff`), put in by the first add to an index, not by the caller."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    seeded: list[str] = field(default_factory=list)


class KnowledgeBase:
    """An index and an embedder (None: keywords only). Synchronous and thread-safe; see module docstring."""

    def __init__(self, index: Index, embedder: Embedder | None = None, *, min_score: float | None = None,
                 mode: str = "fused", max_words: int = 120) -> None:
        if mode not in ("fused", "keyword", "dense"):
            raise ValueError("mode is fused, keyword or dense")
        if mode == "dense" and embedder is None:
            raise ValueError("dense search needs an embedder")
        self.index = index
        self.embedder = embedder
        self.mode = mode if embedder is not None else "keyword"
        self.max_words = max_words
        self.threshold = min_score if min_score is not None else (
            embedder.threshold if embedder is not None else MIN_COVERAGE)

    @property
    def embedder_name(self) -> str:
        return self.embedder.name if self.embedder is not None else "none"

    def check_embedder(self) -> None:
        """Raise ConfigError when the index holds vectors of another model than this embedder's."""
        built = self.index.meta("embedder")
        if built is not None and built != self.embedder_name and self.index.stats()["passages"]:
            raise ConfigError(f"the knowledge base was indexed with embeddings {built!r} but "
                              f"BOTKIT_KB_EMBEDDINGS is {self.embedder_name!r}: set it back, or run "
                              "`botkit kb reindex` to index it again.")

    # writing ------------------------------------------------------------------------------------------

    def add(self, documents: Iterable[Document], *, force: bool = False) -> Changes:
        """Index documents; one whose content is unchanged (same digest) is skipped unless force."""
        self.check_embedder()
        self.index.set_meta("embedder", self.embedder_name)
        changes = Changes()
        documents = list(documents)
        if self.index.meta("handoff_seeded") is None and not any(d.id == HANDOFF_DOCUMENT for d in documents):
            self.index.set_meta("handoff_seeded", "1")
            self.index.put(*self._indexed(Document(HANDOFF_DOCUMENT, "Questions for a person", HANDOFF_EXAMPLES,
                                                   source="botkit", kind="handoff", language="en",
                                                   updated_at=time.time())))
            changes.seeded.append(HANDOFF_DOCUMENT)
        for document in documents:
            known = self.index.document(document.id)
            if known is not None and known.digest == document.digest and not force:
                changes.unchanged.append(document.id)
                continue
            self.index.put(*self._indexed(document))
            (changes.updated if known is not None else changes.added).append(document.id)
        return changes

    def _indexed(self, document: Document) -> tuple[Document, list[Passage], np.ndarray | None]:
        """The document, its passages and their vectors (None without an embedder), as Index.put takes them."""
        passages = split(document, self.max_words)
        vectors = (self.embedder.embed([p.for_embedding for p in passages])
                   if self.embedder is not None and passages else None)
        return document, passages, vectors

    def remove(self, document_id: str) -> bool:
        return self.index.remove(document_id)

    def replace_source(self, prefix: str, documents: Sequence[Document]) -> Changes:
        """Make the documents whose id starts with prefix exactly these: add new ones, update changed ones,
        remove the rest (a Help Center article unpublished or deleted)."""
        wanted = {d.id for d in documents}
        changes = self.add(documents)
        for known in self.index.documents():
            if known.id.startswith(prefix) and known.id not in wanted:
                self.index.remove(known.id)
                changes.removed.append(known.id)
        return changes

    def record_gap(self, question: str, reason: str, score: float | None = None,
                   conversation: str | None = None) -> None:
        self.index.add_gap(Gap(question, reason, score, conversation, time.time()))

    # searching ----------------------------------------------------------------------------------------

    def search(self, question: str, limit: int = 5) -> Search:
        """The passages for a question, best first, with the verdict (see module docstring)."""
        started = time.perf_counter()
        index = self.index.snapshot()
        terms = query_terms(question)
        keyword: list[tuple[int, float]] = []
        dense: list[tuple[int, float]] = []
        if self.mode in ("fused", "keyword"):
            keyword = index.keyword(terms, DEPTH)
        keys, matrix = index.vectors() if self.mode != "keyword" else (np.zeros(0), None)
        query_vector = None
        if self.embedder is not None and matrix is not None and len(keys):
            query_vector = self.embedder.embed([question], query=True)[0]
            # einsum, not `matrix @ query_vector`: numpy's BLAS spreads a matrix-vector product over threads
            # that spin against the worker's own on two busy cores (10k passages: 20 ms p50, 0.8 ms here)
            cosines = np.einsum("ij,j->i", matrix, query_vector)
            top = np.argpartition(-cosines, min(DEPTH, len(cosines) - 1))[:DEPTH]
            top = top[np.argsort(-cosines[top])]
            dense = [(int(keys[i]), float(cosines[i])) for i in top]
        ranked = self._fuse(keyword, dense)[:limit]
        found = index.passages([key for key, _ in ranked])
        passages = {p.extra["key"]: p for p in found}
        bm25 = dict(keyword)
        cosine = dict(dense)
        hits = [Hit(passages[key], score, bm25.get(key), cosine.get(key)) for key, score in ranked if key in passages]
        if hits and self.embedder is not None and query_vector is not None:
            for hit in hits:
                if hit.cosine is None:  # found by keywords only: its cosine still says how close it is
                    hit.cosine = _cosine(index, hit.passage.extra["key"], query_vector)
                hit.confidence = hit.cosine
        elif hits:
            hits[0].confidence = index.coverage(terms, hits[0].passage.extra["key"])
        verdict = "unanswered"
        if hits and hits[0].passage.kind == "handoff" and hits[0].confidence >= self.threshold:
            verdict = "human"
        elif hits and hits[0].confidence >= self.threshold:
            verdict = "answer"
        return Search(question, hits, verdict, self.threshold, (time.perf_counter() - started) * 1000)

    def _fuse(self, keyword: list[tuple[int, float]], dense: list[tuple[int, float]]) -> list[tuple[int, float]]:
        if not dense:
            return keyword
        if not keyword or self.mode == "dense":
            return dense
        scores: dict[int, float] = {}
        for ranking in (keyword, dense):
            for rank, (key, _) in enumerate(ranking, start=1):
                scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank)
        return sorted(scores.items(), key=lambda item: -item[1])


def _cosine(index: Index, key: int, query_vector: np.ndarray) -> float:
    keys, matrix = index.vectors()
    where = np.searchsorted(keys, key)
    if where < len(keys) and keys[where] == key:
        return float(matrix[where] @ query_vector)
    return 0.0
