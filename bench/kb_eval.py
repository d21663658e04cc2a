"""Knowledge-base retrieval on the Bitext customer-support sample: botkit's fused retrieval beside what a user
would write instead, in one run.

    .venv/bin/python bench/kb_eval.py [--data PATH] [--embeddings minilm] [--latency-queries 200]

Data: `../shared/data/bitext/Bitext_Sample_Customer_Support_Training_Dataset.csv` beside the clone (Bitext,
CDLA-Sharing-1.0; the data is read in place, never copied; results computed from it are free to publish).
Without it the benchmark says so and exits 0.

The task is *answer* retrieval: questions (the `instruction` column) are matched against written answers
(the `response` column), not against other questions. Each intent's rows are split in two by a fixed seed:
the responses of one half are the knowledge base's articles (no titles), the instructions of the other half
are the questions; a passage answers a question when its article is of the question's intent. The intents
`contact_human_agent` and `complaint` have no articles: 25 instructions of each from the first half (with
botkit's own examples) are hand-off examples, and their second-half instructions are the questions that
should reach a person. Hard questions are those tagged Z (typos) or Q (colloquial).

Methods, over the very same passages:
- rank_bm25: `BM25Okapi` over lowercase `\\w+` tokens, the library a Python developer reaches for first;
- SQLite FTS5: botkit's keyword search alone (BM25, porter stemming, title weight 2);
- dense: exact cosine over the embedder's vectors alone;
- botkit fused: both, reciprocal rank fusion (what `KnowledgeHandler` uses).
Hand-off: a question goes to a person when its best passage is a hand-off example (for botkit fused, when
its verdict is "human": the example must also be close enough).

Latency: per query (the embedding of the question included), p50/p95 over `--latency-queries` questions, at
1k and 10k passages (all responses, cut at 60 words). Build: index time per 1,000 passages, embeddings
included (measured on 1k passages, embeddings computed afresh). Memory: the vectors' matrix, the SQLite
file, rank_bm25's Python objects (tracemalloc). Passage vectors are cached in bench/.cache between runs
(keyed by text and model) so a rerun spends its time measuring; question vectors are never cached.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import re
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from botkit.knowledge.documents import Document
from botkit.knowledge.embeddings import E5, MiniLM
from botkit.knowledge.evaluate import Measure
from botkit.knowledge.index import SQLiteIndex
from botkit.knowledge.retrieval import HANDOFF_DOCUMENT, HANDOFF_EXAMPLES, KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "bitext" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
HUMAN_INTENTS = ("contact_human_agent", "complaint")
CACHE = ROOT / "bench" / ".cache"


class CachedEmbedder:
    """Passage vectors from a disk cache (computing the missing ones); questions always computed afresh."""

    def __init__(self, inner, cache: dict[str, np.ndarray]) -> None:
        self.inner, self.cache = inner, cache
        self.name, self.dimensions, self.threshold = inner.name, inner.dimensions, inner.threshold

    def embed(self, texts, *, query=False):
        if query:
            return self.inner.embed(texts, query=True)
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]  # noqa: S324 (a cache key)
        missing = [(k, t) for k, t in zip(keys, texts, strict=True) if k not in self.cache]
        if missing:
            for (k, _), row in zip(missing, self.inner.embed([t for _, t in missing]), strict=True):
                self.cache[k] = row
        return np.vstack([self.cache[k] for k in keys])


def load_cache(name: str) -> dict[str, np.ndarray]:
    path = CACHE / f"vectors-{name}.npz"
    if not path.exists():
        return {}
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def save_cache(name: str, cache: dict[str, np.ndarray]) -> None:
    CACHE.mkdir(exist_ok=True)
    np.savez(CACHE / f"vectors-{name}.npz", **cache)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def split_rows(rows):
    by_intent = defaultdict(list)
    for row in rows:
        by_intent[row["intent"]].append(row)
    rng = random.Random(17)
    first, second = [], []
    for intent in sorted(by_intent):
        group = by_intent[intent][:]
        rng.shuffle(group)
        half = len(group) // 2
        first += group[:half]
        second += group[half:]
    return first, second


def corpus(first):
    """Articles (responses of the first half) and hand-off examples."""
    documents = []
    for n, row in enumerate(first):
        if row["intent"] in HUMAN_INTENTS:
            continue
        documents.append(Document(f"bitext:{row['intent']}:{n}", "", row["response"], kind="article",
                                  source=row["intent"]))
    examples = HANDOFF_EXAMPLES + "".join(
        row["instruction"] + "\n"
        for intent in HUMAN_INTENTS
        for row in [r for r in first if r["intent"] == intent][:25])
    documents.insert(0, Document(HANDOFF_DOCUMENT, "Questions for a person", examples, kind="handoff",
                                 source="botkit"))
    return documents


_TOKEN = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class RankBM25:
    name = "rank_bm25"

    def __init__(self, index: SQLiteIndex) -> None:
        from rank_bm25 import BM25Okapi

        self.keys, self.passages = [], []
        for passage_key, title, text in index._db.execute("SELECT id, title, text FROM kb_passages ORDER BY id"):
            self.keys.append(passage_key)
            self.passages.append(tokens(f"{title} {text}"))
        self.bm25 = BM25Okapi(self.passages)
        self.keys = np.array(self.keys)

    def search(self, question: str, limit: int = 10) -> list[int]:
        scores = self.bm25.get_scores(tokens(question))
        top = np.argpartition(-scores, min(limit, len(scores) - 1))[:limit]
        return [int(self.keys[i]) for i in top[np.argsort(-scores[top])]]


def evaluate(method, questions, index: SQLiteIndex, kinds: dict[int, tuple[str, str]],
             firsts: dict[str, bool] | None = None) -> dict[str, float]:
    """The figures; `firsts` collects, per hard question, whether the first passage was right."""
    measure = Measure()
    given = right = 0  # botkit fused: the answers its verdict lets the bot give, and how many are right
    for row in questions:
        human_expected = row["intent"] in HUMAN_INTENTS
        if isinstance(method, RankBM25):
            keys = method.search(row["instruction"])
            human = bool(keys) and kinds[keys[0]][0] == "handoff"
        else:
            found = method.search(row["instruction"], limit=10)
            keys = [h.passage.extra["key"] for h in found.hits]
            human = found.verdict == "human" if method.mode == "fused" else (
                bool(keys) and kinds[keys[0]][0] == "handoff")
        relevant = [kinds[k][1] == row["intent"] for k in keys]
        if not isinstance(method, RankBM25) and method.mode == "fused" and not human_expected:
            if found.verdict == "answer":
                given += 1
                right += bool(relevant) and relevant[0]
        if firsts is not None and not human_expected and set(row["tags"]) & {"Z", "Q"}:
            firsts[row["instruction"]] = bool(relevant) and relevant[0]
        measure.add(relevant=relevant, human_expected=human_expected, human_predicted=human,
                    hard=bool(set(row["tags"]) & {"Z", "Q"}))
    figures = measure.figures()
    if given:
        figures["answered"] = given / figures["questions"]
        figures["right when answered"] = right / given
    return figures


def passage_kinds(index: SQLiteIndex) -> dict[int, tuple[str, str]]:
    """{passage key: (kind, intent)}."""
    out = {}
    for key, body in index._db.execute("SELECT p.id, d.body FROM kb_passages p JOIN kb_documents d "
                                       "ON d.id = p.document_id"):
        doc = Document.from_json(json.loads(body))
        out[key] = (doc.kind, doc.source)
    return out


def percentile(values, q):
    return float(np.percentile(np.array(values), q))


def latency(method, questions) -> tuple[float, float, float, float]:
    """Wall-clock p50/p95, and CPU-time p50/p95 (the process's CPU, which waiting for a busy machine's cores
    does not inflate; every step of a search runs on the calling thread), in ms."""
    times, cpu = [], []
    for q in questions:
        started, started_cpu = time.perf_counter(), time.process_time()
        method.search(q)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return percentile(times, 50), percentile(times, 95), percentile(cpu, 50), percentile(cpu, 95)


def build_latency_index(rows, size, embedder, workdir) -> tuple[SQLiteIndex, float, float]:
    """An index of `size` passages from all responses cut at 60 words; (index, fts seconds, total seconds)."""
    documents = [Document(f"r{n}", "", row["response"], source=row["intent"]) for n, row in enumerate(rows)]
    path = os.path.join(workdir, f"latency-{size}.db")
    index = SQLiteIndex(path)
    kb = KnowledgeBase(index, embedder, max_words=60)
    kb.index.set_meta("handoff_seeded", "1")
    taken = []
    count = 0
    for document in documents:
        from botkit.knowledge.documents import split

        n = len(split(document, 60))
        if count + n > size:
            continue
        taken.append(document)
        count += n
        if count >= size:
            break
    started = time.perf_counter()
    kb.add(taken)
    return index, count, time.perf_counter() - started


def latency_figures(rows, questions, args, inner, embedder, cache, workdir) -> dict[str, dict[str, Any]]:
    """p50/p95 per method at 1k and 10k passages, and the sizes at 10k."""
    speed: dict[str, dict[str, Any]] = defaultdict(dict)
    rng = random.Random(5)
    sample = [r["instruction"] for r in rng.sample(questions, min(args.latency_queries, len(questions)))]
    for size in (1000, 10000):
        big, count, seconds = build_latency_index(rows, size, embedder, workdir)
        save_cache(inner.name, cache)
        timed = {"rank_bm25": RankBM25(big), "SQLite FTS5": KnowledgeBase(big, None),
                 "dense": KnowledgeBase(big, inner, mode="dense"),
                 "botkit fused": KnowledgeBase(big, inner, mode="fused")}
        for name, method in timed.items():
            method.search(sample[0])  # warm: caches, the model's session
            p50, p95, cpu50, cpu95 = latency(method, sample)
            speed[name][f"p50 {size // 1000}k"] = p50
            speed[name][f"p95 {size // 1000}k"] = p95
            speed[name][f"cpu {size // 1000}k"] = f"{cpu50:.1f} / {cpu95:.1f}"
        if size == 10000:
            keys, matrix = big.vectors()
            vectors = matrix.nbytes / 2**20
            text_only = SQLiteIndex(os.path.join(workdir, "text-only.db"))  # FTS5 without stored vectors
            text_only.set_meta("handoff_seeded", "1")
            KnowledgeBase(text_only, None, max_words=60).add(big.documents())
            fts = os.path.getsize(text_only.path) / 2**20
            speed["SQLite FTS5"]["memory"] = f"{fts:.1f} (file)"
            total = os.path.getsize(big.path) / 2**20
            speed["dense"]["memory"] = f"{vectors:.1f} (RAM) + {total - fts:.1f} (file)"
            speed["botkit fused"]["memory"] = f"{vectors:.1f} (RAM) + {total:.1f} (file)"
            tracemalloc.start()
            kept = RankBM25(big)
            speed["rank_bm25"]["memory"] = f"{tracemalloc.get_traced_memory()[0] / 2**20:.1f} (RAM)"
            tracemalloc.stop()
            del kept
            speed["_"]["passages 10k"] = count
        else:
            speed["_"]["passages 1k"] = count
    return speed


def cell(speed: dict[str, Any], size: str) -> str:
    return f"{speed[f'p50 {size}']:.1f} / {speed[f'p95 {size}']:.1f}" if f"p50 {size}" in speed else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--embeddings", choices=("minilm", "e5"), default="minilm")
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--latency-only", action="store_true", help="only the latencies (e.g. again, when the "
                        "machine is quiet); their table, with the load average")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: the Bitext sample is not at {args.data} (pass --data PATH; it is not part of the "
              "repository).")
        return 0
    rows = read_rows(args.data)
    first, second = split_rows(rows)
    inner = MiniLM() if args.embeddings == "minilm" else E5()
    cache = load_cache(inner.name)
    embedder = CachedEmbedder(inner, cache)
    workdir = tempfile.mkdtemp(prefix="kb_eval-")

    if args.latency_only:
        speed = latency_figures(rows, second, args, inner, embedder, cache, workdir)
        print("| method | p50/p95 1k (ms) | p50/p95 10k (ms) | CPU p50/p95 1k (ms) | CPU p50/p95 10k (ms) |\n"
              "|---|---|---|---|---|")
        for name in ("rank_bm25", "SQLite FTS5", "dense", "botkit fused"):
            s = speed[name]
            print(f"| {name} | {cell(s, '1k')} | {cell(s, '10k')} | {s['cpu 1k']} | {s['cpu 10k']} |")
        print(f"load average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} "
              f"cores; passages {speed['_']['passages 1k']} and {speed['_']['passages 10k']}")
        return 0

    # quality ------------------------------------------------------------------------------------------
    documents = corpus(first)
    index = SQLiteIndex(os.path.join(workdir, "quality.db"))
    index.set_meta("handoff_seeded", "1")
    KnowledgeBase(index, embedder).add(documents)
    save_cache(inner.name, cache)
    kinds = passage_kinds(index)
    methods = {
        "rank_bm25": RankBM25(index),
        "SQLite FTS5": KnowledgeBase(index, None),
        "dense": KnowledgeBase(index, embedder, mode="dense"),
        "botkit fused": KnowledgeBase(index, embedder, mode="fused"),
    }
    questions = second
    answerable = [r for r in questions if r["intent"] not in HUMAN_INTENTS]
    hard = [r for r in answerable if set(r["tags"]) & {"Z", "Q"}]
    print(f"Bitext: {len(rows)} rows; {len(documents) - 1} articles, {len(kinds)} passages; "
          f"{len(answerable)} questions ({len(hard)} hard), {len(questions) - len(answerable)} for a person; "
          f"embeddings {inner.name}")
    results = {}
    firsts: dict[str, dict[str, bool]] = {}
    for name, method in methods.items():
        firsts[name] = {}
        results[name] = evaluate(method, questions, index, kinds, firsts[name])
        print(f"  {name}: done", file=sys.stderr)

    # speed --------------------------------------------------------------------------------------------
    speed: dict[str, dict[str, Any]] = defaultdict(dict)
    if not args.skip_latency:
        speed = latency_figures(rows, questions, args, inner, embedder, cache, workdir)
        # build time per 1,000 passages, embeddings computed afresh
        docs = [Document(f"b{n}", "", row["response"]) for n, row in enumerate(rows[:400])]
        for name, emb in (("SQLite FTS5", None), ("botkit fused", inner)):
            index_b = SQLiteIndex(":memory:")
            index_b.set_meta("handoff_seeded", "1")
            kb = KnowledgeBase(index_b, emb, max_words=60)
            started = time.perf_counter()
            kb.add(docs)
            per = (time.perf_counter() - started) / index_b.stats()["passages"] * 1000
            speed[name]["build s/1k"] = per
        speed["dense"]["build s/1k"] = speed["botkit fused"]["build s/1k"]
        started = time.perf_counter()
        from rank_bm25 import BM25Okapi

        BM25Okapi([tokens(d.text) for d in docs])
        speed["rank_bm25"]["build s/1k"] = (time.perf_counter() - started) / index_b.stats()["passages"] * 1000

    # the table ----------------------------------------------------------------------------------------
    print()
    print("| method | recall@1 | recall@3 | MRR | hard recall@1 | hard recall@3 | hard MRR | hand-off P | hand-off R |"
          " p50/p95 1k (ms) | p50/p95 10k (ms) | CPU p50/p95 10k (ms) | build (s per 1k passages) | size at 10k (MB) |")
    print("|---|" + "---|" * 13)
    for name, r in results.items():
        s = speed.get(name, {})
        build = f"{s['build s/1k']:.2f}" if "build s/1k" in s else "-"
        memory = s.get("memory", "-")
        print(f"| {name} | {r['recall@1']:.3f} | {r['recall@3']:.3f} | {r['mrr']:.3f} | {r['hard recall@1']:.3f} | "
              f"{r['hard recall@3']:.3f} | {r['hard mrr']:.3f} | {r['handoff precision']:.3f} | "
              f"{r['handoff recall']:.3f} | {cell(s, '1k')} | {cell(s, '10k')} | {s.get('cpu 10k', '-')} | {build} | "
              f"{memory} |")
    best_baseline = max(results[n]["hard recall@1"] for n in ("rank_bm25", "SQLite FTS5", "dense"))
    fused = results["botkit fused"]["hard recall@1"]
    fused_figures = results["botkit fused"]
    if "answered" in fused_figures:
        print(f"\nbotkit fused's verdict answers {fused_figures['answered']:.3f} of the answerable questions, "
              f"{fused_figures['right when answered']:.3f} of those with the right article first")
    best = max(("rank_bm25", "SQLite FTS5", "dense"), key=lambda n: results[n]["hard recall@1"])
    wins = sum(firsts["botkit fused"][q] and not firsts[best][q] for q in firsts[best])
    losses = sum(firsts[best][q] and not firsts["botkit fused"][q] for q in firsts[best])
    print(f"\nhard recall@1: fused {fused:.3f} vs best baseline ({best}) {best_baseline:.3f} "
          f"(ratio {fused / best_baseline:.3f}); hard questions fused gets right and {best} wrong: {wins}, "
          f"the reverse: {losses}")
    if speed:
        print(f"load average during the run (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
              f"on {os.cpu_count()} cores")
        p95 = speed["botkit fused"]["p95 10k"]
        print(f"fused p95 at {speed['_'].get('passages 10k', 0):.0f} passages: {p95:.1f} ms "
              f"(rank_bm25 {speed['rank_bm25']['p95 10k']:.1f} ms, ratio {p95 / speed['rank_bm25']['p95 10k']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
