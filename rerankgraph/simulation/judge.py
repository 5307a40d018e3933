"""A simulated judge for studying algorithms at full scale on a CPU.

It answers the judge prompts of every method from qrels, with configurable noise:
Gaussian noise on relevance scores, a probability of flipping a comparison, and a bias
towards passages shown earlier. It is never a default, and everything it produces is
labelled as simulated (model name, provenance, run tag).

The simulator knows no method. It finds the passages in the prompt (every template
fences them in `<passage>` tags) and knows which documents they are from the request's
tags (`query_id`, `doc_ids`), which never reach a prompt. Requests without tags (a
tree node's description, texts passed without ids) are matched by text: the query by
its `Search query: ...` line, a passage by its opening, which documents can share. It
looks up the grades, adds the noise, and hands them to the agent named by the
request's `purpose`: each agent's `simulate` says what its reply looks like.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rerankgraph.agents.base import Agent, SimulatedReply, fence
from rerankgraph.errors import InputError
from rerankgraph.index.tree import Tree
from rerankgraph.serving.base import ChatRequest, Completion, Engine, prompt_too_long
from rerankgraph.simulation.profile import (
    JudgeProfile,
    OrderProfile,
    ScoreProfile,
    fitted_relevance,
    judges_relevance,
)

_QUERY = re.compile(r"^Search query: (.*)$", re.MULTILINE)
_PASSAGE = re.compile(r"<passage[^>]*>\s*(?:\[[A-Z0-9]{1,3}\] )?(.*?)\s*</passage>", re.DOTALL)
_KEY_CHARS = 48


@dataclass(frozen=True)
class SimulationSettings:
    score_noise: float = 0.0  # std-dev of Gaussian noise on relevance scaled to [0, 1]
    flip_prob: float = 0.0  # chance that a comparison picks a wrong passage at random
    position_bias: float = 0.0  # bonus (in [0, 1] score units) for the first position

    def label(self) -> str:
        return (f"SIMULATED(noise={self.score_noise:g}, flip={self.flip_prob:g}, "
                f"position_bias={self.position_bias:g})")


class _Oracle:
    """The agents' view of one call (see rerankgraph.agents.base.Oracle)."""

    def __init__(self, relevance: list[float], rng: random.Random, flip_prob: float) -> None:
        self.relevance = relevance
        self._rng = rng
        self._flip_prob = flip_prob

    def pick(self, scores: Sequence[float]) -> int:
        best = max(range(len(scores)), key=lambda i: scores[i])
        if len(scores) > 1 and self._rng.random() < self._flip_prob:
            return self._rng.choice([i for i in range(len(scores)) if i != best])
        return best


class SimulatedJudge(Engine):
    """Answers from `qrels` (query id -> doc id -> grade). Unjudged docs have grade 0."""

    simulated = True

    def __init__(self, qrels: dict[str, dict[str, int]], queries: dict[str, str],
                 corpus: dict[str, tuple[str, str]], settings: SimulationSettings | None = None,
                 seed: int = 0, max_model_len: int = 8192,
                 profile: JudgeProfile | None = None, latency_s: float = 0.0) -> None:
        super().__init__()
        # Seconds each batch of calls takes, as an engine's would: load and shutdown
        # tests need requests that are still in flight.
        self.latency_s = latency_s
        self.settings = settings or SimulationSettings()
        # A fitted profile replaces the built-in noise for the agents it measured.
        self.profile = profile
        self.model_name = (f"SIMULATED(profile={profile.model})" if profile is not None
                           else self.settings.label())
        self._seed = seed
        self.max_model_len = max_model_len
        self._qrels = qrels
        self._max_grade = max((g for docs in qrels.values() for g in docs.values()), default=1) or 1
        self._query_ids = {fence(text, "query"): qid for qid, text in queries.items()}
        self._known_queries = set(queries)
        self._known_docs = set(corpus)
        self._doc_ids: dict[str, str] = {}
        for doc_id, (title, text) in corpus.items():
            full = f"{title}\n{text}" if title else text
            self._doc_ids.setdefault(fence(full)[:_KEY_CHARS], doc_id)
        # A tree node's description -> the documents under it (LATTICE); its relevance is
        # the best grade among them.
        self._groups: dict[str, frozenset[str]] = {}
        self._agents: dict[str, Agent] = {}
        self._vocab: dict[str, int] = {}
        self._words: list[str] = []

    def learn_groups(self, groups: Mapping[str, Iterable[str]]) -> None:
        """Teaches the judge that a text (a tree node's description) stands for these
        documents, so a slate item showing it scores the best of their grades."""
        for text, doc_ids in groups.items():
            self._groups[" ".join(fence(text).split())] = frozenset(doc_ids)

    def learn_tree(self, tree: Tree) -> None:
        """Teaches the judge every node description of a tree built before."""
        self.learn_groups({node.summary: [tree.doc_ids[r] for r in tree.docs_under(node.id)]
                           for node in tree.nodes if node.summary})

    # -- reading a prompt ------------------------------------------------------------
    def _passage_docs(self, request: ChatRequest, content: str) -> list[frozenset[str]]:
        """The documents each passage of a prompt stands for: a group's (a tree node's
        description), the tagged document, or the document whose opening it shows."""
        texts = [" ".join(p.split()) for p in _PASSAGE.findall(content)]
        tagged = request.doc_ids if len(request.doc_ids) == len(texts) else ("",) * len(texts)
        found = []
        for text, tag in zip(texts, tagged, strict=True):
            group = self._groups.get(text)
            if group is None:
                doc_id = tag if tag in self._known_docs else self._doc_ids.get(text[:_KEY_CHARS])
                group = frozenset((doc_id,)) if doc_id is not None else frozenset()
            found.append(group)
        return found

    def _grades(self, request: ChatRequest, content: str, passages: list[frozenset[str]]
                ) -> list[float]:
        qid = request.query_id if request.query_id in self._known_queries else None
        if qid is None:
            query = _QUERY.search(content)
            qid = self._query_ids.get(query.group(1).strip()) if query else None
        judged = self._qrels.get(qid or "", {})
        return [max((judged.get(d, 0) for d in docs), default=0) / self._max_grade
                for docs in passages]

    def _noisy(self, grades: list[float], rng: random.Random) -> list[float]:
        count = len(grades)
        return [g + rng.gauss(0, self.settings.score_noise)
                + self.settings.position_bias * (1 - i / max(count - 1, 1))
                for i, g in enumerate(grades)]

    def _agent(self, purpose: str) -> Agent:
        if purpose not in self._agents:
            found = Agent.named(purpose)
            if found is None:
                raise InputError(f"the simulated judge answers agents' requests only; this "
                                 f"one has purpose {purpose!r}, which names no agent "
                                 "(build requests with Agent.ask)")
            self._agents[purpose] = found()
        return self._agents[purpose]

    # -- answering ---------------------------------------------------------------------
    async def _chat(self, requests: list[ChatRequest]) -> list[Completion]:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return [self._answer(r) for r in requests]

    def _answer(self, request: ChatRequest) -> Completion:
        content = request.prompt
        # The context holds as on a real engine, in this judge's whitespace tokens.
        prompt_tokens = sum(len(m["content"].split()) for m in request.messages)
        if prompt_tokens + request.max_tokens > self.max_model_len:
            raise prompt_too_long(request, prompt_tokens, self.max_model_len)
        agent = self._agent(request.purpose)
        passages = self._passage_docs(request, content)
        grades = self._grades(request, content, passages)
        if not grades and agent.reads_passages:
            raise InputError(f"the simulated judge found no <passage> in agent "
                             f"{agent.name!r}'s prompt ({agent.template})")
        # Sampled requests (n > 1 above temperature 0) draw each sample's noise anew, as
        # K sampled trajectories of a real judge differ; greedy ones repeat one reply.
        draws = request.n if request.n > 1 and request.temperature > 0 else 1
        fitted = self._fitted(agent)
        top = self.profile.max_grade if self.profile is not None else 0
        levels = [round(g * self._max_grade) for g in grades]
        replies = []
        for draw in range(draws):
            rng = self._call_rng(agent, request, passages, draw)
            oracle = (_Oracle(fitted_relevance(fitted, levels, top, rng), rng, 0.0)
                      if fitted is not None
                      else _Oracle(self._noisy(grades, rng), rng, self.settings.flip_prob))
            replies.append(agent.simulate(request, oracle))
        for reply in replies:
            _check_fits(agent, request, reply)
        text = replies[0].text
        if agent.summarizes:
            self.learn_groups({text: frozenset().union(*passages)})
        texts = tuple(r.text for r in replies) * (request.n // draws)
        positions = tuple(({**r.logprobs, r.text: r.logprobs.get(r.text, 0.0)},)
                          if r.logprobs else () for r in replies) * (request.n // draws)
        return Completion(texts=texts, logprobs=positions if any(positions) else (),
                          prompt_tokens=len(content) // 4,
                          completion_tokens=sum(max(1, len(t) // 4) for t in texts),
                          finish_reasons=("stop",) * request.n)

    def _fitted(self, agent: Agent) -> ScoreProfile | OrderProfile | None:
        """The profile entry that answers for this agent; None where the built-in noise
        answers (no profile, or an agent that judges no relevance)."""
        if self.profile is None:
            return None
        if agent.name not in self.profile.agents and not judges_relevance(agent.name):
            return None
        return self.profile.agent(agent.name, f"judge profile of {self.profile.model}")

    def _call_rng(self, agent: Agent, request: ChatRequest, passages: list[frozenset[str]],
                  draw: int) -> random.Random:
        """Each call's noise comes from its own content, not from one stream: a seeded run
        repeats whatever order concurrent queries' calls arrive in, and a greedy call
        asked again repeats its reply."""
        return random.Random(f"{self._seed}|{agent.name}|{request.query_id}|"
                             f"{sorted(map(sorted, passages))}|{request.seed}|"
                             f"{request.prompt}|{draw}")

    # Whitespace "tokens", so document budgets behave like a real tokenizer's.
    async def _tokenize(self, text: str) -> list[int]:
        ids = []
        for word in text.split():
            if word not in self._vocab:
                self._vocab[word] = len(self._words)
                self._words.append(word)
            ids.append(self._vocab[word])
        return ids

    async def _detokenize(self, token_ids: list[int]) -> str:
        return " ".join(self._words[i] for i in token_ids)


def _check_fits(agent: Agent, request: ChatRequest, reply: SimulatedReply) -> None:
    """A simulated reply must be one a constrained model could give: a reply that breaks
    the request's own choice or regex would test the parser's repairs, not the method."""
    fits = ((request.choice is None or reply.text in request.choice)
            and (request.regex is None or re.fullmatch(request.regex, reply.text) is not None))
    if not fits:
        raise ValueError(f"{type(agent).__name__}.simulate replied {reply.text[:60]!r}, which "
                         "does not fit the request's structured output")
