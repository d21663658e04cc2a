"""`botkit kb`: the knowledge base's sources, contents, searches and gaps.

    botkit kb add PATH... [--language en] [--link URL] [--handoff] [--force]
    botkit kb sync [--portal SLUG] [--account ID]
    botkit kb list | stats
    botkit kb remove ID_OR_SOURCE...
    botkit kb search "question" [--limit 5]
    botkit kb gaps [--limit 50] [--clear]
    botkit kb eval QUESTIONS.csv
    botkit kb reindex

The index lives beside the store (BOTKIT_STORE: the SQLite file, or Redis) and uses the BOTKIT_KB_EMBEDDINGS
embedder; a running bot sees every change at its next question. `search` prints each passage with its
scores and source, so a person sees why the bot answered what it did.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

from botkit.commands.errors import CommandError
from botkit.commands.stores import require_store
from botkit.config import load_settings

if TYPE_CHECKING:  # botkit.knowledge needs the kb extra (numpy, ...): imported when a kb command runs
    from botkit.knowledge import KnowledgeBase
    from botkit.knowledge.documents import Document
    from botkit.knowledge.retrieval import Changes


def _fail(message: str) -> NoReturn:
    raise CommandError(message)


def _knowledge() -> ModuleType:
    """botkit.knowledge, imported only when a kb command runs, so the rest of the CLI works without the
    kb extra; one sentence when that extra is missing."""
    try:
        import botkit.knowledge as knowledge
    except ImportError as exc:
        raise CommandError(f"botkit kb needs the kb extra: pip install 'botkit[kb]' ({exc}).") from None
    return knowledge


def _kb(*, create: bool = False) -> KnowledgeBase:
    """The knowledge base beside BOTKIT_STORE. Only `create` (add, sync) may make a new SQLite store: the other
    commands would read an empty one made in whatever folder they ran, so they say there is none."""
    knowledge, settings = _knowledge(), load_settings()
    if not create:
        require_store(settings.botkit_store, "botkit kb", "BOTKIT_STORE (botkit kb add makes a new one)")
    return knowledge.knowledge_from_settings(settings)


def _print_changes(changes: Changes) -> None:
    for name in ("added", "updated", "removed"):
        for doc_id in getattr(changes, name):
            print(f"{name}\t{doc_id}")
    print(f"{len(changes.added)} added, {len(changes.updated)} updated, {len(changes.unchanged)} unchanged, "
          f"{len(changes.removed)} removed", file=sys.stderr)
    for doc_id in changes.seeded:
        print(f"botkit: a new knowledge base starts with {doc_id}, botkit's examples of questions for a person "
              "(they get the human verdict); botkit kb add --handoff FILE adds your own.", file=sys.stderr)


def add(args: argparse.Namespace) -> int:
    knowledge = _knowledge()
    from botkit.knowledge.documents import Document

    documents: list[Document] = []
    try:
        for path in args.paths:
            found = knowledge.read_path(path, language=args.language, link=args.link)
            if args.handoff:
                found = [Document(f"handoff:{d.source}", d.title, d.text, source=d.source, kind="handoff",
                                  language=d.language) for d in found]
            documents.extend(found)
    except knowledge.DocumentError as exc:
        _fail(str(exc))
    if not documents:
        _fail(f"no Markdown, text, HTML, PDF, CSV or JSON files in {' '.join(args.paths)}.")
    kb = _kb(create=True)  # only once there is something to add: a failed first add makes no empty store
    _print_changes(kb.add(documents, force=args.force))
    return 0


def sync(args: argparse.Namespace) -> int:
    from botkit.chatwoot import ChatwootError
    from botkit.commands.provision import _admin_client
    settings = load_settings()
    knowledge = _knowledge()
    from botkit.knowledge import helpcenter

    account = args.account or settings.chatwoot_account_id

    async def main() -> helpcenter.SyncReport:
        async with _admin_client() as client:  # its settings checked before a new store is made
            kb = knowledge.knowledge_from_settings(settings)  # may make a new store, as add does
            return await helpcenter.sync(kb, client, account_id=account, base_url=settings.chatwoot_base_url or "",
                                         portal=args.portal)

    try:
        report = asyncio.run(main())
    except ChatwootError as exc:
        _fail(str(exc))
    except LookupError:
        _fail(f"account {account} has no Help Center portal with the slug {args.portal!r}.")
    if not report.portals:
        print(f"account {account} has no Help Center portal", file=sys.stderr)
    _print_changes(report.changes)
    return 0


def list_documents(args: argparse.Namespace) -> int:
    for doc in _kb().index.documents():
        updated = time.strftime("%Y-%m-%d %H:%M", time.gmtime(doc.updated_at)) if doc.updated_at else "-"
        print("\t".join([doc.id, doc.kind, doc.language or "-", updated, doc.title, doc.link or "-"]))
    return 0


def remove(args: argparse.Namespace) -> int:
    kb = _kb()
    known = kb.index.documents()
    missing = 0
    for target in args.targets:
        ids = [d.id for d in known if target in (d.id, d.source)]
        if not ids:
            print(f"botkit: no document has the id or source {target!r} (botkit kb list shows them)", file=sys.stderr)
            missing += 1
        for doc_id in ids:
            kb.remove(doc_id)
            print(f"removed\t{doc_id}")
    return 1 if missing else 0


def stats(args: argparse.Namespace) -> int:
    kb = _kb()
    figures = kb.index.stats()
    kinds: dict[str, int] = {}
    for doc in kb.index.documents():
        kinds[doc.kind] = kinds.get(doc.kind, 0) + 1
    print(f"documents\t{figures['documents']}\t" + " ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
    print(f"passages\t{figures['passages']}")
    print(f"vectors\t{figures['vectors']}\t{kb.index.meta('embedder') or 'none'}")
    print(f"gaps\t{figures['gaps']}")
    return 0


def search(args: argparse.Namespace) -> int:
    kb = _kb()
    kb.check_embedder()
    found = kb.search(args.question, limit=args.limit)
    if not found.hits and all(d.kind == "handoff" for d in kb.index.documents()):  # the shipped examples only
        print("botkit: the knowledge base has no documents yet: add them with botkit kb add PATH... or botkit kb "
              "sync.", file=sys.stderr)
    print(f"verdict: {found.verdict} (confidence {found.best.confidence if found.best else 0:.3f}, "
          f"threshold {found.threshold:.3f}, {found.took_ms:.1f} ms)")
    for rank, hit in enumerate(found.hits, start=1):
        scores = [f"fused {hit.score:.4f}"]
        if hit.bm25 is not None:
            scores.append(f"bm25 {hit.bm25:.2f}")
        if hit.cosine is not None:
            scores.append(f"cosine {hit.cosine:.3f}")
        source = hit.passage.link or hit.passage.extra.get("source") or hit.passage.document_id
        print(f"{rank}. [{hit.passage.kind}] {hit.passage.title or '(untitled)'}  ({', '.join(scores)})")
        print(f"   {source}")
        text = " ".join(hit.passage.text.split())
        if text:
            print(f"   {text[:200]}{'…' if len(text) > 200 else ''}")
    return 0


def gaps(args: argparse.Namespace) -> int:
    kb = _kb()
    if args.clear:
        print(f"cleared {kb.index.clear_gaps()} questions", file=sys.stderr)
        return 0
    for gap in kb.index.gaps(args.limit):
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(gap.at))
        score = f"{gap.score:.3f}" if gap.score is not None else "-"
        print("\t".join([when, gap.reason, score, gap.conversation or "-", " ".join(gap.question.split())]))
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from botkit.knowledge.evaluate import Measure, read_cases

    try:
        with open(args.questions, encoding="utf-8-sig", newline="") as f:
            cases = read_cases(f.read(), args.questions)
    except OSError as exc:
        _fail(f"{args.questions} cannot be read ({exc.strerror}).")
    except ValueError as exc:
        _fail(str(exc))
    kb = _kb()
    kb.check_embedder()
    measure = Measure()
    for case in cases:
        found = kb.search(case.question, limit=10)
        expected = {e.casefold() for e in case.expected}
        relevant = [bool(expected & {v.casefold() for v in (h.passage.document_id, h.passage.link or "",
                                                             h.passage.extra.get("document_title") or "") if v})
                    for h in found.answers]
        measure.add(relevant=relevant, human_expected=case.human, human_predicted=found.verdict == "human",
                    hard=case.hard)
    figures = measure.figures()
    for name, value in figures.items():
        print(f"{name}\t{value:.3f}" if isinstance(value, float) else f"{name}\t{value}")
    return 0


def reindex(args: argparse.Namespace) -> int:
    kb = _kb()
    documents = kb.index.documents()
    kb.index.set_meta("embedder", kb.embedder_name)
    _print_changes(kb.add(documents, force=True))
    return 0


def add_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("kb", help="the knowledge base: add documents, sync the Help Center, search")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    p = actions.add_parser("add", help="add Markdown, text, HTML or PDF files or folders, or an FAQ CSV/JSON")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--language", help="the documents' language, e.g. en or pt-BR")
    p.add_argument("--link", help="the link the bot gives as the documents' source")
    p.add_argument("--handoff", action="store_true",
                   help="the files hold example questions a person should take, one a line")
    p.add_argument("--force", action="store_true", help="index unchanged documents again")
    p.set_defaults(func=add)

    p = actions.add_parser("sync", help="bring in the published articles of the account's Help Center portals")
    p.add_argument("--portal", metavar="SLUG", help="only this portal")
    p.add_argument("--account", type=int, help="the Chatwoot account (default CHATWOOT_ACCOUNT_ID)")
    p.set_defaults(func=sync)

    actions.add_parser("list", help="the documents: id, kind, language, updated, title, link").set_defaults(
        func=list_documents)
    p = actions.add_parser("remove", help="remove documents by id, or every document of a source (a file path)")
    p.add_argument("targets", nargs="+", metavar="ID_OR_SOURCE")
    p.set_defaults(func=remove)
    actions.add_parser("stats", help="how many documents, passages, vectors and gaps").set_defaults(func=stats)

    p = actions.add_parser("search", help="the passages found for a question, with scores and sources")
    p.add_argument("question")
    p.add_argument("--limit", type=int, default=5)
    p.set_defaults(func=search)

    p = actions.add_parser("gaps", help="questions the knowledge base did not answer, newest first")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--clear", action="store_true", help="forget them")
    p.set_defaults(func=gaps)

    p = actions.add_parser("eval", help="recall@1/@3, MRR and hand-off precision/recall on your own questions")
    p.add_argument("questions", metavar="QUESTIONS.csv",
                   help="columns: question, expected (ids, titles or links, |-separated), human (yes/no), hard")
    p.set_defaults(func=evaluate)

    actions.add_parser("reindex", help="split and embed every document again (after changing "
                                       "BOTKIT_KB_EMBEDDINGS)").set_defaults(func=reindex)
