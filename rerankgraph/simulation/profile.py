"""Judge profiles: how a real judge answers, measured on judged pairs, and the fitted
simulator that answers as it does.

A profile holds one entry per agent (the judge's prompt family):
- a score judge (pointwise, rubric, groupwise): the distribution of its scores per
  qrels grade, as quantiles, and the AUC of each grade against grade 0. A fitted
  simulator draws a passage's score from its grade's distribution;
- a comparative judge (listwise, setwise, FIRST, pairwise): the rate at which it leaves
  the shown order, picks the first-shown passage, and picks or orders right. A fitted
  simulator answers with a choice model fitted to those rates on the same layouts of
  grades: with probability `keep` it answers as shown, else by grade plus Gaussian
  noise plus a bonus for earlier positions.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from rerankgraph.errors import InputError
from rerankgraph.types import Judgment, ParseStatus

PROFILE_FORMAT: Literal["rerankgraph-judge-profile/1"] = "rerankgraph-judge-profile/1"
# Each score judge's reply scale; profiles and the simulator work in [0, 1].
_SCALES = {"rubric": 100.0}
_QUANTILES = 21  # 0%, 5%, ..., 100%
_KEEP_GRID = np.round(np.arange(0.0, 1.0, 0.025), 3)
# 0 fits a judge that never errs (ties keep the shown order, as the agents' sorts do)
_NOISE_GRID = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.5, 5.0)
_BIAS_GRID = (-0.3, -0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5)
_LABEL_GRID = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
_FIT_DRAWS = 16
# Agents that judge relevance: a fitted simulator needs their entry. The others (tree
# summaries, query expansion) answer as the exact simulator does.
_JUDGING = frozenset({"pointwise", "rubric", "groupwise", "listwise", "setwise", "first",
                      "pairwise", "lattice", "vic", "rvr_verify"})


def judges_relevance(agent: str) -> bool:
    return agent in _JUDGING


class Cost(BaseModel):
    """What the judge's calls of one agent cost, per call."""

    calls: int
    prompt_tokens: float
    completion_tokens: float
    seconds: float  # the methods' wall time over their calls (calls run concurrently)
    repaired: int
    fallbacks: int


class ScoreProfile(BaseModel):
    kind: Literal["score"] = "score"
    scale: float
    # grade -> quantiles of the score in [0, 1]; counts: judged pairs per grade
    quantiles: dict[int, list[float]]
    counts: dict[int, int]
    mean: dict[int, float]
    auc_vs_grade0: dict[int, float]
    # mean score by the position a passage was shown at (groupwise); empty for one passage
    by_position: list[float] = []
    cost: Cost


class ChoiceModel(BaseModel):
    """The fitted comparative judge: answers as shown with probability `keep`, else by
    grade / max grade + N(0, noise) + position_bias * (1 - position / (n - 1))
    + label_weight * label_prior[position]."""

    keep: float
    noise: float
    position_bias: float
    # A bonus per shown position, from how often the judge picked each (log of the pick
    # share over the uniform share): a judge drawn to one label, such as the 1.5B's
    # FIRST replies that open with "O" whatever it shows there, is not monotone in position.
    label_weight: float = 0.0
    label_prior: list[float] = []
    loss: float  # squared error of the fitted rates against the measured ones


class OrderProfile(BaseModel):
    kind: Literal["order"] = "order"
    full_order: bool  # replies order every passage (listwise, FIRST), else pick one
    calls: int
    kept_rate: float  # replies that left the shown order (picked the first shown)
    first_pick_rate: float
    # calls whose passages all share one grade, and the others
    first_pick_rate_equal: float | None
    first_pick_rate_different: float | None
    top_pick_accuracy: float | None  # a passage of the best grade shown was picked first
    concordance: float | None  # pairs of different grade that a full order puts right
    pick_position: list[float]  # share of first picks by shown position
    layouts: list[list[int]]  # the grades as shown, per readable call (for refitting)
    fitted: ChoiceModel
    cost: Cost


AgentProfile = Annotated[ScoreProfile | OrderProfile, Field(discriminator="kind")]


class JudgeProfile(BaseModel):
    format: Literal["rerankgraph-judge-profile/1"] = PROFILE_FORMAT
    model: str
    data: str
    run: str
    qrels: str
    query_ids: list[str]
    depth: int
    max_grade: int
    code_version: str
    created: str
    agents: dict[str, AgentProfile]

    def agent(self, name: str, source: str = "the profile") -> ScoreProfile | OrderProfile:
        """The entry of one agent; InputError naming what the profile has otherwise."""
        found = self.agents.get(name)
        if found is None:
            raise InputError(f"{source} measured agents {', '.join(sorted(self.agents))}, "
                             f"not {name!r}: profile that method family with `rerankgraph "
                             "judge profile --methods ...`")
        return found

    def summary_rows(self) -> list[tuple[str, str, str, str]]:
        """(agent, what, measured, cost) lines for a short table."""
        rows = []
        for name, entry in sorted(self.agents.items()):
            cost = (f"{entry.cost.calls} calls, {entry.cost.prompt_tokens:.0f}+"
                    f"{entry.cost.completion_tokens:.1f} tok, {entry.cost.seconds:.2f} s")
            if isinstance(entry, ScoreProfile):
                means = " ".join(f"g{g}={m:.2f}(n={entry.counts[g]})"
                                 for g, m in sorted(entry.mean.items()))
                aucs = " ".join(f"g{g}={a:.2f}" for g, a in sorted(entry.auc_vs_grade0.items()))
                rows.append((name, "mean score by grade", means, cost))
                rows.append((name, "AUC vs grade 0", aucs or "-", ""))
            else:
                rows.append((name, "kept as shown / first picked",
                             f"{entry.kept_rate:.2f} / {entry.first_pick_rate:.2f}", cost))
                rows.append((name, "first picked: equal / different grades",
                             f"{_rate(entry.first_pick_rate_equal)} / "
                             f"{_rate(entry.first_pick_rate_different)}", ""))
                rows.append((name, "best grade picked / concordance",
                             f"{_rate(entry.top_pick_accuracy)} / {_rate(entry.concordance)}", ""))
                fit = entry.fitted
                rows.append((name, "fitted keep, noise, position bias, label weight",
                             f"{fit.keep:.3f}, {fit.noise:g}, {fit.position_bias:g}, "
                             f"{fit.label_weight:g} (loss {fit.loss:.4f})", ""))
        return rows


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


# -- measuring ---------------------------------------------------------------------------
def measure_agent(name: str, judgments: Sequence[Judgment], qrels: Mapping[str, Mapping[str, int]],
                  query_of: Sequence[str], seconds: float, max_grade: int
                  ) -> ScoreProfile | OrderProfile:
    """The profile of one agent from its judgments (`query_of[i]` is the query of the
    i-th) against `qrels`; `seconds` is the wall time the calls took together."""
    cost = Cost(calls=sum(j.calls for j in judgments),
                prompt_tokens=_mean([j.prompt_tokens for j in judgments]),
                completion_tokens=_mean([j.completion_tokens for j in judgments]),
                seconds=seconds / max(1, sum(j.calls for j in judgments)),
                repaired=sum(j.status == ParseStatus.REPAIRED for j in judgments),
                fallbacks=sum(j.status == ParseStatus.FALLBACK for j in judgments))
    readable = [(j, q) for j, q in zip(judgments, query_of, strict=True)
                if j.status != ParseStatus.FALLBACK]
    shaped = [j.parsed for j, _ in readable]
    if shaped and all(isinstance(p, int | float) for p in shaped) and \
            all(len(j.doc_ids) == 1 for j, _ in readable):
        scale = _SCALES.get(name, 1.0)
        scored = [(qrels.get(q, {}).get(j.doc_ids[0], 0), s / scale)
                  for j, q in readable for s in (j.sample_scores or (float(j.parsed),))]
        return score_profile(scored, scale, cost, max_grade)
    if shaped and all(isinstance(p, dict) for p in shaped):
        pairs: list[tuple[int, float]] = []
        by_position: dict[int, list[float]] = {}
        for j, q in readable:
            for position, doc in enumerate(j.doc_ids):
                if doc in j.parsed:
                    pairs.append((qrels.get(q, {}).get(doc, 0), float(j.parsed[doc])))
                    by_position.setdefault(position, []).append(float(j.parsed[doc]))
        profile = score_profile(pairs, 1.0, cost, max_grade)
        profile.by_position = [_mean(by_position[p]) for p in sorted(by_position)]
        return profile
    calls = []
    for j, q in readable:
        grades = [qrels.get(q, {}).get(d, 0) for d in j.doc_ids]
        order = _order_of(j)
        if order is not None:
            calls.append((grades, order))
    if not calls:
        raise InputError(f"agent {name!r} gave no readable comparative reply to profile")
    return order_profile(calls, cost, max_grade)


def _order_of(j: Judgment) -> list[int] | None:
    """The shown positions in the order the reply puts them (a pick: that position
    alone); None for a reply that prefers neither (a pair at exactly 0.5)."""
    shown = list(j.doc_ids)
    parsed = j.parsed
    if isinstance(parsed, float | int) and len(shown) == 2:
        return None if parsed == 0.5 else ([0, 1] if parsed > 0.5 else [1, 0])
    if isinstance(parsed, str) and parsed in shown:
        return [shown.index(parsed)]
    if isinstance(parsed, list | tuple) and set(map(str, parsed)) <= set(shown) and parsed:
        return [shown.index(str(d)) for d in parsed]
    return None


def score_profile(pairs: Sequence[tuple[int, float]], scale: float, cost: Cost,
                  max_grade: int) -> ScoreProfile:
    """The score distribution per grade of (grade, score in [0, 1]) pairs."""
    from sklearn.metrics import roc_auc_score

    by_grade: dict[int, list[float]] = {}
    for grade, score in pairs:
        by_grade.setdefault(max(0, grade), []).append(score)
    quantiles = {g: [float(x) for x in np.quantile(s, np.linspace(0, 1, _QUANTILES))]
                 for g, s in sorted(by_grade.items())}
    aucs = {}
    for grade, scores in sorted(by_grade.items()):
        if grade == 0 or 0 not in by_grade:
            continue
        labels = [0] * len(by_grade[0]) + [1] * len(scores)
        aucs[grade] = float(roc_auc_score(labels, by_grade[0] + scores))
    return ScoreProfile(scale=scale, quantiles=quantiles,
                        counts={g: len(s) for g, s in by_grade.items()},
                        mean={g: _mean(s) for g, s in by_grade.items()},
                        auc_vs_grade0=aucs, cost=cost)


def order_profile(calls: Sequence[tuple[list[int], list[int]]], cost: Cost, max_grade: int
                  ) -> OrderProfile:
    """The rates of comparative replies (grades as shown, the reply's order of shown
    positions), and the choice model fitted to them."""
    full = all(len(order) == len(grades) for grades, order in calls)
    measured = _rates([g for g, _ in calls], [o for _, o in calls], full)
    width = max(len(g) for g, _ in calls)
    picks = [0] * width
    for _, order in calls:
        picks[order[0]] += 1
    layouts = [g for g, _ in calls]
    kept, first = measured["kept_rate"], measured["first_pick_rate"]
    assert kept is not None and first is not None
    pick_position = [p / len(calls) for p in picks]
    return OrderProfile(full_order=full, calls=len(calls), kept_rate=kept, first_pick_rate=first,
                        first_pick_rate_equal=measured["first_pick_rate_equal"],
                        first_pick_rate_different=measured["first_pick_rate_different"],
                        top_pick_accuracy=measured["top_pick_accuracy"],
                        concordance=measured["concordance"],
                        pick_position=pick_position, layouts=layouts,
                        fitted=fit_choice_model(layouts, measured, full, max_grade,
                                                pick_position=pick_position), cost=cost)


def _rates(layouts: Sequence[Sequence[int]], orders: Sequence[Sequence[int]], full: bool
           ) -> dict[str, float | None]:
    kept: list[bool] = []
    first: list[bool] = []
    first_eq: list[bool] = []
    first_diff: list[bool] = []
    best: list[bool] = []
    conc: list[bool] = []
    for grades, order in zip(layouts, orders, strict=True):
        first.append(order[0] == 0)
        kept.append(order == list(range(len(grades))) if full else order[0] == 0)
        if len(set(grades)) == 1:
            first_eq.append(order[0] == 0)
            continue
        first_diff.append(order[0] == 0)
        best.append(grades[order[0]] == max(grades))
        if full:
            rank = {position: r for r, position in enumerate(order)}
            conc.extend((rank[i] < rank[j]) == (grades[i] > grades[j])
                        for i in range(len(grades)) for j in range(i + 1, len(grades))
                        if grades[i] != grades[j])
    return {"kept_rate": _mean(kept), "first_pick_rate": _mean(first),
            "first_pick_rate_equal": _mean(first_eq) if first_eq else None,
            "first_pick_rate_different": _mean(first_diff) if first_diff else None,
            "top_pick_accuracy": _mean(best) if best else None,
            "concordance": _mean(conc) if conc else None}


_FITTED_RATES = ("kept_rate", "first_pick_rate_equal", "first_pick_rate_different",
                 "top_pick_accuracy", "concordance")


def fit_choice_model(layouts: Sequence[Sequence[int]], measured: Mapping[str, float | None],
                     full: bool, max_grade: int, seed: int = 0,
                     pick_position: Sequence[float] = ()) -> ChoiceModel:
    """The (keep, noise, position bias, label weight) on a grid whose simulated rates on
    the same layouts, and share of first picks per position, are closest to the measured
    ones (least squares, common random numbers). The rates are linear in `keep`, so it is
    solved on its grid for each of the others."""
    rng = np.random.default_rng(seed)
    grades, mask, position = _padded(layouts, max_grade)
    prior = label_prior(pick_position, len(layouts), grades.shape[1])
    draws = rng.standard_normal((_FIT_DRAWS, *grades.shape))
    # The agents sort stably: of equal relevance, the earlier shown comes first.
    stable = -1e-9 * np.arange(grades.shape[1])
    identity = _simulated_rates(layouts, grades, mask, None, full)
    identity_picks = _pick_shares(mask, None)
    target_picks = np.asarray(pick_position, dtype=float)
    best: tuple[float, float, float, float, float] | None = None
    for weight in _LABEL_GRID if len(target_picks) else (0.0,):
        for noise in _NOISE_GRID:
            for bias in _BIAS_GRID:
                latent = grades + noise * draws + bias * position + weight * prior + stable
                noisy = _simulated_rates(layouts, grades, mask, latent, full)
                noisy_picks = _pick_shares(mask, latent)
                for keep in _KEEP_GRID:
                    loss = 0.0
                    for key in _FITTED_RATES:
                        target = measured.get(key)
                        if target is None or identity[key] is None:
                            continue
                        predicted = keep * identity[key] + (1 - keep) * noisy[key]
                        loss += (predicted - target) ** 2
                    if len(target_picks):
                        shares = keep * identity_picks + (1 - keep) * noisy_picks
                        loss += float(((shares[:len(target_picks)] - target_picks) ** 2).sum())
                    if best is None or loss < best[0] - 1e-12:
                        best = (loss, float(keep), noise, bias, weight)
    assert best is not None
    return ChoiceModel(keep=best[1], noise=best[2], position_bias=best[3],
                       label_weight=best[4], label_prior=[float(x) for x in prior],
                       loss=best[0])


def refit(profile: JudgeProfile) -> JudgeProfile:
    """The profile with every comparative judge's choice model fitted again, by this
    code's fitter, from the layouts and rates it stored (no judge is asked again)."""
    agents: dict[str, ScoreProfile | OrderProfile] = {}
    for name, entry in profile.agents.items():
        if isinstance(entry, OrderProfile):
            measured = {key: getattr(entry, key) for key in _FITTED_RATES}
            entry = entry.model_copy(update={"fitted": fit_choice_model(
                entry.layouts, measured, entry.full_order, profile.max_grade,
                pick_position=entry.pick_position)})
        agents[name] = entry
    return profile.model_copy(update={"agents": agents})


def label_prior(pick_position: Sequence[float], calls: int, width: int) -> np.ndarray:
    """Per shown position, the log of its share of first picks over the uniform share
    (smoothed by half a call, so an unpicked position is finite); zeros without shares."""
    prior = np.zeros(width)
    if len(pick_position):
        shares = (np.asarray(pick_position[:width], dtype=float) + 0.5 / max(calls, 1))
        shares /= shares.sum()
        prior[:len(shares)] = np.log(shares * len(shares))
    return prior


def _pick_shares(mask: np.ndarray, latent: np.ndarray | None) -> np.ndarray:
    """The share of first picks per shown position, over calls and draws."""
    if latent is None:  # as shown: the first position always
        shares = np.zeros(mask.shape[1])
        shares[0] = 1.0
        return shares
    top = np.where(mask[None], latent, -np.inf).argmax(axis=2)
    return np.bincount(top.ravel(), minlength=mask.shape[1]) / top.size


def _padded(layouts: Sequence[Sequence[int]], max_grade: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    width = max(len(g) for g in layouts)
    grades = np.zeros((len(layouts), width))
    mask = np.zeros((len(layouts), width), dtype=bool)
    position = np.zeros((len(layouts), width))
    for c, shown in enumerate(layouts):
        n = len(shown)
        grades[c, :n] = np.asarray(shown, dtype=float) / max(max_grade, 1)
        mask[c, :n] = True
        position[c, :n] = 1 - np.arange(n) / max(n - 1, 1)
    return grades, mask, position


def _simulated_rates(layouts: Sequence[Sequence[int]], grades: np.ndarray, mask: np.ndarray,
                     latent: np.ndarray | None, full: bool) -> dict[str, float | None]:
    """The rates of `_rates` in expectation over the draws of `latent` (draws, calls,
    width); `latent` None: every reply as shown."""
    if latent is None:
        latent = np.broadcast_to(-np.arange(grades.shape[1], dtype=float), grades.shape)[None]
    latent = np.where(mask[None], latent, -np.inf)
    top = latent.argmax(axis=2)  # (draws, calls)
    n = mask.sum(axis=1)
    equal = np.array([len(set(g)) == 1 for g in layouts])
    best_grade = np.where(mask, grades, -np.inf).max(axis=1)
    picked_grade = np.take_along_axis(grades[None].repeat(top.shape[0], 0), top[..., None],
                                      axis=2)[..., 0]
    first = top == 0
    if full:
        ahead = latent[..., :, None] > latent[..., None, :]  # i ordered before j
        gi, gj = grades[:, :, None], grades[:, None, :]
        upper = np.triu(np.ones((grades.shape[1],) * 2, dtype=bool), 1)
        pair = (gi != gj) & mask[:, :, None] & mask[:, None, :] & upper
        right = (ahead == (gi > gj)) & pair
        order_kept = np.all(np.where((mask[:, :, None] & mask[:, None, :] & upper)[None],
                                     ahead, True), axis=(2, 3))
        concordance = float(right.sum() / (pair.sum() * latent.shape[0])) if pair.any() \
            else None
        kept = order_kept
    else:
        concordance = None
        kept = first
    different = ~equal & (n > 1)
    return {"kept_rate": float(kept.mean()),
            "first_pick_rate_equal": float(first[:, equal].mean()) if equal.any() else None,
            "first_pick_rate_different": float(first[:, different].mean())
            if different.any() else None,
            "top_pick_accuracy": float((picked_grade == best_grade)[:, different].mean())
            if different.any() else None,
            "concordance": concordance}


def _mean(values: Sequence[float | bool]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


# -- reading -----------------------------------------------------------------------------
def load_profile(path: str | Path) -> JudgeProfile:
    """Reads a profile file; InputError naming the file for a corrupt or foreign one."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"judge profile {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"judge profile {path} is not JSON: {error}") from None
    if not isinstance(raw, dict) or raw.get("format") != PROFILE_FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise InputError(f"{path} is not a judge profile (format {found!r}, expected "
                         f"{PROFILE_FORMAT!r}); write one with `rerankgraph judge profile`")
    try:
        profile = JudgeProfile.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise InputError(f"judge profile {path}: field {where}: {first['msg']}") from None
    for name, entry in profile.agents.items():
        if isinstance(entry, ScoreProfile):
            missing = [g for g in range(profile.max_grade + 1) if not entry.counts.get(g)]
            if missing:
                raise InputError(f"judge profile {path}: agent {name!r} has no judged pairs "
                                 f"of grade {', '.join(map(str, missing))}; profile more "
                                 "queries (--queries) or deeper (--depth)")
    return profile


def draw_score(entry: ScoreProfile, grade: int, u: float) -> float:
    """A score in [0, 1] of a passage of `grade`, at quantile `u` of its distribution
    (linear between the stored quantiles). Grades above the profile's take its top."""
    known = sorted(entry.quantiles)
    grade = min(max(grade, known[0]), known[-1])
    if grade not in entry.quantiles:  # between two measured grades: the lower one
        grade = max(g for g in known if g <= grade)
    values = entry.quantiles[grade]
    x = u * (len(values) - 1)
    low = min(int(math.floor(x)), len(values) - 2)
    return values[low] + (values[low + 1] - values[low]) * (x - low)


def fitted_relevance(entry: ScoreProfile | OrderProfile, grades: Sequence[int], max_grade: int,
                     rng: random.Random) -> list[float]:
    """The relevance a profiled judge shows for passages of `grades` (as shown), in the
    simulator's [0, 1] scale: drawn from each grade's score distribution, or, for a
    comparative judge, the shown order with probability `keep` and else grade plus
    noise plus the fitted bonus for earlier positions."""
    if isinstance(entry, ScoreProfile):
        return [draw_score(entry, g, rng.random()) for g in grades]
    count, fit = len(grades), entry.fitted
    if rng.random() < fit.keep:
        return [1 - i / count for i in range(count)]
    prior = fit.label_prior
    return [g / max(max_grade, 1) + rng.gauss(0, fit.noise)
            + fit.position_bias * (1 - i / max(count - 1, 1))
            + fit.label_weight * (prior[i] if i < len(prior) else 0.0)
            for i, g in enumerate(grades)]
