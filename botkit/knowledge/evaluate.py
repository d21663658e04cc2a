"""Measures of retrieval: answer recall@1 and @3, MRR, and hand-off precision and recall.

`botkit kb eval QUESTIONS.csv` and bench/kb_eval.py both fill a `Measure`, one question at a time:

    measure.add(relevant=[False, True, False], human_expected=False, human_predicted=False, hard=False)

`relevant` says, for the passages found in rank order, whether each answers the question. A question a person
should take (`human_expected`) counts only toward hand-off precision and recall; the others toward recall and
MRR ("hard" ones also toward the hard-question figures).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field


@dataclass
class _Tally:
    questions: int = 0
    at1: int = 0
    at3: int = 0
    reciprocal: float = 0.0

    def add(self, relevant: list[bool]) -> None:
        self.questions += 1
        first = next((rank for rank, ok in enumerate(relevant, start=1) if ok), None)
        if first is not None:
            self.at1 += first == 1
            self.at3 += first <= 3
            self.reciprocal += 1.0 / first

    def figures(self) -> dict[str, float]:
        n = self.questions or 1
        return {"questions": self.questions, "recall@1": self.at1 / n, "recall@3": self.at3 / n,
                "mrr": self.reciprocal / n}


@dataclass
class Measure:
    all: _Tally = field(default_factory=_Tally)
    hard: _Tally = field(default_factory=_Tally)
    true_handoffs: int = 0
    false_handoffs: int = 0
    missed_handoffs: int = 0

    def add(self, *, relevant: list[bool], human_expected: bool, human_predicted: bool, hard: bool = False) -> None:
        if human_expected:
            self.true_handoffs += human_predicted
            self.missed_handoffs += not human_predicted
            return
        self.false_handoffs += human_predicted
        self.all.add(relevant)
        if hard:
            self.hard.add(relevant)

    def figures(self) -> dict[str, float]:
        predicted = self.true_handoffs + self.false_handoffs
        expected = self.true_handoffs + self.missed_handoffs
        return {
            **self.all.figures(),
            **{f"hard {k}": v for k, v in self.hard.figures().items()},
            "handoff precision": self.true_handoffs / predicted if predicted else 0.0,
            "handoff recall": self.true_handoffs / expected if expected else 0.0,
        }


@dataclass
class Case:
    """One row of a team's questions file: the question, what answers it, and whether a person should take it."""

    question: str
    expected: list[str]  # document ids, titles or links; any one found counts
    human: bool = False
    hard: bool = False


def read_cases(text: str, source: str = "the questions file") -> list[Case]:
    """A CSV with a header: `question`, `expected` (document ids, titles or links, separated by `|`), and
    optionally `human` (yes/true/1 when the question should go to a person) and `hard`."""
    reader = csv.DictReader(io.StringIO(text))
    fields = {(name or "").strip().lower() for name in reader.fieldnames or []}
    if "question" not in fields or not ({"expected", "human"} & fields):
        raise ValueError(f"{source} needs a header row with question and expected (and/or human) columns.")
    cases = []
    for row in reader:
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        if not row.get("question"):
            continue
        cases.append(Case(row["question"], [e.strip() for e in row.get("expected", "").split("|") if e.strip()],
                          human=row.get("human", "").lower() in ("yes", "true", "1", "y"),
                          hard=row.get("hard", "").lower() in ("yes", "true", "1", "y")))
    return cases
