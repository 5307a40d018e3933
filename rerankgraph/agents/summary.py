"""Tree summary writer (LATTICE's offline step): one call describes a node from its
children, the documents of a leaf cluster or the descriptions of child nodes.

The reply is free text: a regex constraint that only forbids newlines and markup costs
a mask over nearly the whole vocabulary at every decoding step on the CPU engine, for
little gain. So the reply is cleaned instead: only its first line is kept
and markup is dropped (counted REPAIRED), and a reply cut off at the token budget is
kept and counted REPAIRED. An empty one falls back to the children's opening words and
is counted as a FALLBACK.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from rerankgraph.agents.base import Agent, FittedDoc, Oracle, SimulatedReply, judgment, render
from rerankgraph.agents.parsing import strip_reasoning
from rerankgraph.serving.base import ChatRequest, Engine
from rerankgraph.types import Candidate, Judgment, ParseStatus

MAX_WORDS = 30
_MARKUP = re.compile(r"[<>]")
_ITEM = re.compile(r"<passage[^>]*>\s*\[\d+\] (.*?)\s*</passage>", re.DOTALL)


def fallback_summary(texts: Sequence[str], words: int = 6) -> str:
    """The children's opening words, when the model wrote nothing usable."""
    return "; ".join(" ".join(t.split()[:words]) for t in texts if t.strip())[:600]


def read_summary(reply: str) -> tuple[str, ParseStatus, str]:
    """The reply's first non-empty line without markup, on one line."""
    lines = [line for line in strip_reasoning(reply).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    text = " ".join(_MARKUP.sub(" ", first).split())
    notes = []
    if len(lines) > 1:
        notes.append(f"kept the first of {len(lines)} lines")
    if _MARKUP.search(first):
        notes.append("dropped markup")
    return text, ParseStatus.REPAIRED if notes else ParseStatus.OK, "; ".join(notes)


class SummaryAgent(Agent):
    """Writes node descriptions; `parsed` is the description. One batch per call of
    `summarize`, so a whole tree level goes to the engine together."""

    name = "tree_summary"
    template = "tree_summary.j2"
    summarizes = True

    async def summarize(self, engine: Engine, groups: Sequence[Sequence[str]],
                        leaves: Sequence[bool], max_item_tokens: int = 32,
                        max_words: int = MAX_WORDS) -> list[Judgment]:
        """One judgment per group of child texts (documents when `leaves[i]`), each
        described in at most `max_words` words."""
        max_reply_tokens = math.ceil(1.6 * max_words)  # about 1.6 tokens a word (48 for 30)
        shown: list[list[FittedDoc]] = []
        requests = []
        for items, leaf in zip(groups, leaves, strict=True):
            fitted = await engine.fit_texts(list(items), max_item_tokens)
            shown.append([FittedDoc(Candidate(doc_id=str(i), text=item), text, cut)
                          for i, (item, (text, cut)) in enumerate(zip(items, fitted,
                                                                        strict=True))])
            prompt = render(self.template, items=[text for text, _ in fitted], leaves=leaf,
                            max_words=max_words)
            requests.append(self.ask(prompt, max_tokens=max_reply_tokens))
        completions = await engine.chat(requests)
        judgments = []
        for items, docs, request, completion in zip(groups, shown, requests, completions,
                                                    strict=True):
            text, status, note = read_summary(completion.text)
            if len(text) < 3:
                text, status = fallback_summary(items), ParseStatus.FALLBACK
                note = "empty description; used the children's opening words"
            judgments.append(judgment(self.name, request, docs, completion, text, status,
                                      note))
        return judgments

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """The children's opening words: unique per node, and not a model's prose."""
        items = _ITEM.findall(request.prompt)
        return SimulatedReply(_MARKUP.sub(" ", fallback_summary(items, words=4))
                              or "empty group")

