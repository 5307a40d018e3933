"""What every agent shares: the Agent base class, templates, document fitting, chat
messages, judgments, and the shapes a simulated judge answers in."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, ClassVar, NamedTuple, Protocol

import jinja2

from rerankgraph.errors import InputError
from rerankgraph.serving.base import ChatRequest, Completion, Engine
from rerankgraph.types import Candidate, Judgment, ParseStatus, Query

# Markup a document could use to close its own field or pose as another passage.
_FENCE_MARKUP = re.compile(r"</?\s*(passage|query|document|doc|group|system|user|assistant)"
                           r"\b[^>]*>|<\|im_(start|end)\|>", re.IGNORECASE)
_LABEL_MARKUP = re.compile(r"\[\s*(\d{1,3}|[A-Z])\s*\]")


def fence(text: str, field: str = "passage") -> str:
    """Neutralises markup in untrusted text so it cannot close its own field, open a new
    one or fake a passage label such as [3]; whitespace runs are collapsed."""
    text = _FENCE_MARKUP.sub(" ", text)
    if field == "passage":
        text = _LABEL_MARKUP.sub(r"(\1)", text)
    return " ".join(text.split())


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rerankgraph", "prompts"),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)
    env.filters["fence"] = fence
    return env


def render(template: str, **values: object) -> str:
    """Renders `prompts/<template>` with untrusted values passed through `fence`."""
    return _environment().get_template(template).render(**values).strip()


def chat_messages(user_content: str) -> tuple[dict[str, str], ...]:
    """System instructions first, then the user message; the model's own chat template
    wraps them (in the engine)."""
    return ({"role": "system", "content": render("system.j2")},
            {"role": "user", "content": user_content})


@dataclass(frozen=True)
class FittedDoc:
    candidate: Candidate
    text: str
    truncated: bool


async def fit_candidates(engine: Engine, candidates: Sequence[Candidate], max_tokens: int,
                         per_prompt: int | None = None) -> list[FittedDoc]:
    """Cuts each candidate's title and text to `max_tokens` of the model's tokenizer.
    `per_prompt` passages share one prompt (default: all of them). Raises InputError
    when the passage budget alone overflows the model's context."""
    shared = per_prompt or len(candidates)
    if max_tokens * shared >= engine.max_model_len:
        raise InputError(f"{shared} passages of up to {max_tokens} tokens do not fit "
                         f"the model's context of {engine.max_model_len} tokens; lower "
                         "max_doc_tokens or serve a longer --max-model-len")
    fitted = await engine.fit_texts([c.full_text for c in candidates], max_tokens)
    return [FittedDoc(c, text, cut) for c, (text, cut) in zip(candidates, fitted, strict=True)]


CUT_OFF_NOTE = "reply cut off at max_tokens"


def cut_off(request: ChatRequest, completion: Completion) -> bool:
    """True when a sample stopped at `max_tokens` before its reply was complete. A reply
    that already is one of the request's choices, or matches its regex in full, is
    complete even when it used every token it was allowed: one-token judges always do."""
    for text, reason in zip(completion.texts, completion.finish_reasons, strict=False):
        if reason != "length":
            continue
        if request.choice is not None and text in request.choice:
            continue
        if request.regex is not None and re.fullmatch(request.regex, text) is not None:
            continue
        return True
    return False


def judgment(agent: str, request: ChatRequest, docs: Sequence[FittedDoc],
             completion: Completion, parsed: object, status: ParseStatus, note: str = ""
             ) -> Judgment:
    """The judgment record of one call (`request` answered by `completion`) over `docs`.
    Every agent builds its judgments here, so that a reply cut off at max_tokens is never
    taken as clean: an OK reading of it becomes REPAIRED (a FALLBACK stays one)."""
    if status != ParseStatus.FALLBACK and cut_off(request, completion):
        status = ParseStatus.REPAIRED
        note = f"{note}; {CUT_OFF_NOTE}" if note else CUT_OFF_NOTE
    return Judgment(agent=agent, doc_ids=tuple(d.candidate.doc_id for d in docs),
                    raw_reply=completion.text, parsed=parsed, status=status, note=note,
                    prompt_tokens=completion.prompt_tokens,
                    completion_tokens=completion.completion_tokens,
                    truncated_docs=sum(d.truncated for d in docs), cached=completion.cached)


async def judge_each(agent: str, engine: Engine, query: Query, candidates: Sequence[Candidate],
                     max_doc_tokens: int, make_request: Callable[[str], ChatRequest],
                     read: Callable[[Completion], tuple[float, ParseStatus, str]]
                     ) -> list[Judgment]:
    """One call per candidate, all sent to the engine in one batch; one judgment each
    with the score `read` takes from the reply."""
    docs = await fit_candidates(engine, candidates, max_doc_tokens, per_prompt=1)
    requests = [replace(make_request(doc.text), query_id=query.id,
                        doc_ids=(doc.candidate.doc_id,)) for doc in docs]
    completions = await engine.chat(requests)
    judgments = []
    for doc, call, completion in zip(docs, requests, completions, strict=True):
        score, status, note = read(completion)
        judgments.append(judgment(agent, call, [doc], completion, score, status, note))
    return judgments


def best_prior(candidates: Sequence[Candidate]) -> int:
    """Index of the candidate the first stage ranked highest (ties: the earliest); the
    fallback pick when a comparison reply cannot be read."""
    return min(range(len(candidates)),
               key=lambda i: (candidates[i].rank if candidates[i].rank is not None else i, i))


class Oracle(Protocol):
    """What a simulated judge knows when it answers one call. `relevance[i]` is the
    relevance of the i-th passage as the prompt shows it, about 0 to 1, with the
    simulator's noise and position bias already added. `pick` returns the index of the
    best of some scores, and a wrong one at the simulator's flip rate."""

    @property
    def relevance(self) -> Sequence[float]: ...

    def pick(self, scores: Sequence[float]) -> int: ...


class SimulatedReply(NamedTuple):
    """A simulated reply: its text and the first reply token's logprobs (empty when the
    agent reads none)."""

    text: str
    logprobs: dict[str, float] = {}


class Agent:
    """A judge: renders its template, asks the engine, reads the reply.

    A subclass sets `name`, unique among agents, and `template`. Every request it sends
    through `ask` carries the name as its `purpose`, which engines ignore. `simulate`
    says how a judge that knows each passage's relevance answers the agent's request;
    `rerankgraph.simulation` finds the agent by that purpose and calls it, so a new
    agent needs no edit in the simulator. Agents are built without arguments.
    """

    name: str
    template: str
    # True for an agent whose reply describes the passages it was shown (tree summaries):
    # a simulated judge then treats that reply as standing for their documents.
    summarizes: ClassVar[bool] = False
    # False for an agent whose prompt shows no passage (query expansion): a simulated
    # judge then answers it without looking any up.
    reads_passages: ClassVar[bool] = True
    _by_name: ClassVar[dict[str, type[Agent]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is None:
            return  # an intermediate base class; its subclasses register
        taken = Agent._by_name.get(name)
        if taken is not None and _where(taken) != _where(cls):
            raise ValueError(f"agent name {name!r} is taken by {_where(taken)}")
        Agent._by_name[name] = cls

    @staticmethod
    def named(name: str) -> type[Agent] | None:
        """The agent class whose `name` is `name`, among those imported; else None."""
        return Agent._by_name.get(name)

    def ask(self, content: str, about: Query | None = None,
            shown: Sequence[FittedDoc] = (), opening: str | None = None,
            **sampling: Any) -> ChatRequest:
        """A chat request for a rendered prompt (system message first), tagged with the
        agent's name as its purpose, and with the query and the passages it shows. With
        `opening`, the reply starts with that text and the model continues it."""
        messages = chat_messages(content)
        if opening is not None:
            messages += ({"role": "assistant", "content": opening},)
        return ChatRequest(messages=messages, purpose=self.name,
                           query_id=about.id if about is not None else "",
                           doc_ids=tuple(d.candidate.doc_id for d in shown), **sampling)

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """The reply of a judge that knows each passage's relevance. It must fit the
        request's structured-output constraint (choice or regex)."""
        raise NotImplementedError(f"agent {self.name!r} does not say how a simulated judge "
                                  f"answers it; define {type(self).__name__}.simulate")


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def simulated_choice(labels: Sequence[str], oracle: Oracle) -> SimulatedReply:
    """One label of `labels` (the i-th names the i-th passage): the best one by
    `oracle.pick`, with logprobs that rank the others by relevance below it."""
    scores = list(oracle.relevance[:len(labels)])
    chosen = oracle.pick(scores)
    weights = [math.exp(4 * s) for s in scores]
    weights[chosen] = max(weights) * 1.5
    total = sum(weights)
    return SimulatedReply(labels[chosen], {label: math.log(w / total)
                                           for label, w in zip(labels, weights, strict=False)})


def clamp01(value: float) -> float:
    return min(max(value, 0.0), 1.0)
