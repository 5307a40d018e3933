"""Readers for judge replies. Each returns the value, a ParseStatus and a short note,
so that every repair and fallback is counted instead of hidden."""

from __future__ import annotations

import json
import math
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from rerankgraph.types import ParseStatus

M = TypeVar("M", bound=BaseModel)

_REASONING = re.compile(r"<(think|thinking|reasoning)>.*?(</\1>|$)", re.DOTALL | re.IGNORECASE)


def strip_reasoning(text: str) -> str:
    """Drops <think>...</think> style blocks (closed or cut off) and code fences."""
    text = _REASONING.sub(" ", text)
    return text.replace("```json", " ").replace("```", " ").strip()


def yes_probability(logprobs: dict[str, float]) -> float | None:
    """P(yes) / (P(yes) + P(no)) from the first reply token's top logprobs, summing
    case and space variants. None when neither word is among the alternatives."""
    mass = {"yes": 0.0, "no": 0.0}
    for token, logprob in logprobs.items():
        word = token.strip().lower()
        if word in mass:
            mass[word] += math.exp(logprob)
    total = mass["yes"] + mass["no"]
    return mass["yes"] / total if total > 0 else None


def read_yes_no(text: str, logprobs: dict[str, float]) -> tuple[float, ParseStatus, str]:
    """Pointwise reading: logprobs first, then the reply word, then a neutral 0.5."""
    probability = yes_probability(logprobs)
    if probability is not None:
        return probability, ParseStatus.OK, ""
    word = strip_reasoning(text).lower()
    if re.match(r"^\W*yes\b", word):
        return 1.0, ParseStatus.REPAIRED, "no yes/no logprobs; read the reply word"
    if re.match(r"^\W*no\b", word):
        return 0.0, ParseStatus.REPAIRED, "no yes/no logprobs; read the reply word"
    return 0.5, ParseStatus.FALLBACK, f"reply {text[:40]!r} is neither yes nor no; scored 0.5"


def first_json_object(text: str) -> str | None:
    """The first balanced {...} in text, ignoring braces inside strings."""
    start = text.find("{")
    while start != -1:
        depth, in_string, escaped = 0, False, False
        for index in range(start, len(text)):
            char = text[index]
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    return text[start:index + 1]
        start = text.find("{", start + 1)
    return None


def read_json(text: str, model: type[M]) -> tuple[M | None, ParseStatus, str]:
    """Reads a reply into `model`: as is, else after cutting reasoning and prose around
    the first JSON object (REPAIRED). None with FALLBACK when neither works."""
    try:
        return model.model_validate_json(text), ParseStatus.OK, ""
    except ValidationError:
        pass
    candidate = first_json_object(strip_reasoning(text))
    if candidate is not None:
        try:
            return (model.model_validate_json(candidate), ParseStatus.REPAIRED,
                    "cut text around the JSON object")
        except ValidationError as exc:
            return None, ParseStatus.FALLBACK, f"JSON does not fit: {_first_error(exc)}"
    return None, ParseStatus.FALLBACK, f"no JSON object in reply {text[:40]!r}"


def read_json_field_number(text: str, field: str) -> float | None:
    """A number written after `"field":`, for replies cut off before the JSON closed."""
    match = re.search(rf'"{re.escape(field)}"\s*:\s*"?(-?\d+(?:\.\d+)?)', text)
    return float(match.group(1)) if match else None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"[:120]


def read_permutation(text: str, size: int) -> tuple[list[int], ParseStatus, str]:
    """Reads a ranking like `[3] > [1] > [2]` into 0-based indices of all `size` items.

    Duplicates and out-of-range ids are dropped, missing ids are appended in their prior
    order; each such fix makes the status REPAIRED. A reply with no usable id at all is a
    FALLBACK that keeps the prior order.
    """
    body = strip_reasoning(text)
    bracketed = re.findall(r"\[\s*(\d+)\s*\]", body)
    numbers = [int(n) for n in (bracketed or re.findall(r"\b(\d+)\b", body))]
    order: list[int] = []
    dropped_duplicates = dropped_out_of_range = 0
    for number in numbers:
        if not 1 <= number <= size:
            dropped_out_of_range += 1
        elif number - 1 in order:
            dropped_duplicates += 1
        else:
            order.append(number - 1)
    if not order:
        return list(range(size)), ParseStatus.FALLBACK, f"no passage id in {text[:40]!r}"
    missing = [i for i in range(size) if i not in order]
    notes = []
    if dropped_duplicates:
        notes.append(f"dropped {dropped_duplicates} duplicate ids")
    if dropped_out_of_range:
        notes.append(f"dropped {dropped_out_of_range} out-of-range ids")
    if missing:
        notes.append(f"appended {len(missing)} missing ids")
    if not bracketed and numbers:
        notes.append("ids without brackets")
    status = ParseStatus.REPAIRED if notes else ParseStatus.OK
    return order + missing, status, "; ".join(notes)


def read_label(text: str, labels: list[str]) -> int | None:
    """Index of the label the reply names (`B`, `[B]`, `Passage B`), or None."""
    body = strip_reasoning(text).strip()
    if body in labels:
        return labels.index(body)
    match = re.search(r"(?:passage\s*)?\[?\b([A-Z])\b\]?", body, re.IGNORECASE)
    if match and match.group(1).upper() in labels:
        return labels.index(match.group(1).upper())
    return None


def label_probabilities(logprobs: dict[str, float], labels: list[str]) -> dict[int, float]:
    """Probability mass per label at one position (case and spaces folded); labels
    absent from the alternatives are left out."""
    mass: dict[int, float] = {}
    for token, logprob in logprobs.items():
        key = token.strip().strip("[]").upper()
        if key in labels:
            index = labels.index(key)
            mass[index] = mass.get(index, 0.0) + math.exp(logprob)
    return mass


def id_scores_regex(size: int, max_score: int) -> str:
    """Compact JSON with every id 1..size once, each scored 0..max_score (10 or 100). A
    regex rather than a JSON schema, so no tokens go to whitespace (about 3x fewer reply
    tokens)."""
    number = {10: "(10|[0-9])", 100: "(100|[1-9]?[0-9])"}[max_score]
    entries = ", ".join(f'"{i}": {number}' for i in range(1, size + 1))
    return r"\{" + entries + r"\}"


def read_id_scores(text: str, size: int, max_score: int
                   ) -> tuple[dict[int, float], ParseStatus, str]:
    """Scores per 0-based position, scaled to [0, 1]. Missing ids, clamped values and
    text around the JSON are repairs; no readable score at all is a FALLBACK."""
    body = strip_reasoning(text)
    found: dict[str, object] = {}
    notes = []
    try:
        loaded = json.loads(body)
        found = loaded if isinstance(loaded, dict) else {}
    except json.JSONDecodeError:
        candidate = first_json_object(body)
        try:
            loaded = json.loads(candidate) if candidate else {}
            found = loaded if isinstance(loaded, dict) else {}
            notes.append("cut text around the JSON")
        except json.JSONDecodeError:
            found = {}
        if not found:
            found = dict(re.findall(r'"?\[?(\d+)\]?"?\s*:\s*(-?\d+(?:\.\d+)?)', body))
            if found:
                notes.append("read id: score pairs from broken JSON")
    scores: dict[int, float] = {}
    clamped = 0
    for key, value in found.items():
        label = str(key).strip().strip("[]")
        if not label.isdigit() or not 1 <= int(label) <= size:
            continue
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if not 0 <= number <= max_score:
            clamped += 1
            number = min(max(number, 0.0), float(max_score))
        scores[int(label) - 1] = number / max_score
    if not scores:
        return {}, ParseStatus.FALLBACK, f"no scores in reply {text[:40]!r}"
    if clamped:
        notes.append(f"clamped {clamped} scores to 0-{max_score}")
    if len(scores) < size:
        notes.append(f"{size - len(scores)} ids missing; not scored")
    return scores, ParseStatus.REPAIRED if notes else ParseStatus.OK, "; ".join(notes)
