"""Readers for judge replies. Each returns the value, a ParseStatus and a short note,
so that every repair and fallback is counted instead of hidden."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from rerankgraph.types import ParseStatus

M = TypeVar("M", bound=BaseModel)

_TAG = r"(think|thinking|reasoning)"
_CLOSED_BLOCK = re.compile(rf"<{_TAG}>.*?</\1>", re.DOTALL | re.IGNORECASE)
# A closing tag left without its opening one: chat templates that open the reasoning
# block in the prompt leave only `</think>` in the reply, after the reasoning.
_UP_TO_CLOSE = re.compile(rf".*</{_TAG}>", re.DOTALL | re.IGNORECASE)
_OPEN = re.compile(rf"<{_TAG}>", re.IGNORECASE)
UNCLOSED_NOTE = "unclosed <think>; read the text after it"


def _unfence(text: str) -> str:
    return text.replace("```json", " ").replace("```", " ").strip()


def _split_reasoning(text: str) -> tuple[str, str]:
    """(the reply outside reasoning blocks, the text after an opening tag never closed)."""
    text = _UP_TO_CLOSE.sub(" ", _CLOSED_BLOCK.sub(" ", text), count=1)
    opening = _OPEN.search(text)
    if opening is None:
        return _unfence(text), ""
    return _unfence(text[:opening.start()]), _unfence(text[opening.end():])


def strip_reasoning(text: str) -> str:
    """The reply without reasoning blocks and code fences. A block never closed runs
    to the end: this is for free text, where reasoning cannot be told from an answer."""
    return _split_reasoning(text)[0]


def answer_text(text: str) -> tuple[str, str]:
    """The reply without reasoning blocks and code fences, and a note. When nothing
    stands outside an opening tag that was never closed (a model that forgot it, or a
    reply cut off), the text after the tag is returned with UNCLOSED_NOTE, so that a
    structured answer in it is still read, and counted as a repair."""
    outside, inside = _split_reasoning(text)
    if outside or not inside:
        return outside, ""
    return inside, UNCLOSED_NOTE


def _join(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


def yes_probability(logprobs: dict[str, float]) -> float | None:
    """P(yes) / (P(yes) + P(no)) from the first reply token's logprobs. Under the
    choice constraint those are the only tokens with mass (vLLM masks before computing
    logprobs), so no case or space variant is looked for. None when neither is there."""
    mass = {word: math.exp(logprobs[word]) for word in ("yes", "no") if word in logprobs}
    total = sum(mass.values())
    return mass.get("yes", 0.0) / total if total > 0 else None


YES_NO_FROM_WORD = "no yes/no logprobs; read the reply word"


def read_yes_no(text: str, logprobs: dict[str, float]) -> tuple[float, ParseStatus, str]:
    """Pointwise reading: logprobs first, then the reply word, then a neutral 0.5."""
    probability = yes_probability(logprobs)
    if probability is not None:
        return probability, ParseStatus.OK, ""
    body, unclosed = answer_text(text)
    word = body.lower()
    note = _join(YES_NO_FROM_WORD, unclosed)
    if re.match(r"^\W*yes\b", word):
        return 1.0, ParseStatus.REPAIRED, note
    if re.match(r"^\W*no\b", word):
        return 0.0, ParseStatus.REPAIRED, note
    return 0.5, ParseStatus.FALLBACK, f"reply {text[:40]!r} is neither yes nor no; scored 0.5"


def _object_end(text: str, start: int) -> int | None:
    """The index just past the {...} opening at `start`, or None if it never closes."""
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
                return index + 1
    return None


def json_objects(text: str) -> list[str]:
    """Every outermost balanced {...} in text, in order, ignoring braces inside strings.
    An opening brace that never closes is skipped."""
    found = []
    start = text.find("{")
    while start != -1:
        end = _object_end(text, start)
        if end is None:
            start = text.find("{", start + 1)
        else:
            found.append(text[start:end])
            start = text.find("{", end)
    return found


def first_json_object(text: str) -> str | None:
    """The first balanced {...} in text, ignoring braces inside strings."""
    objects = json_objects(text)
    return objects[0] if objects else None


def read_json(text: str, model: type[M]) -> tuple[M | None, ParseStatus, str]:
    """Reads a reply into `model`: as is, else the last JSON object outside reasoning
    blocks that fits (REPAIRED; the final answer comes after drafts and examples).
    None with FALLBACK when none fits."""
    try:
        return model.model_validate_json(text), ParseStatus.OK, ""
    except ValidationError:
        pass
    body, unclosed = answer_text(text)
    objects = json_objects(body)
    if not objects:
        return None, ParseStatus.FALLBACK, f"no JSON object in reply {text[:40]!r}"
    last_error: ValidationError | None = None
    for candidate in reversed(objects):
        try:
            reply = model.model_validate_json(candidate)
        except ValidationError as exc:
            last_error = last_error or exc
            continue
        several = (f"read the last fitting one of {len(objects)} JSON objects"
                   if len(objects) > 1 else "")
        return reply, ParseStatus.REPAIRED, _join("cut text around the JSON object", several,
                                                  unclosed)
    assert last_error is not None
    return None, ParseStatus.FALLBACK, f"JSON does not fit: {_first_error(last_error)}"


def read_json_field_number(text: str, field: str) -> float | None:
    """The number written after the last `"field":` outside reasoning blocks, for
    replies cut off before the JSON closed. The last one is the final answer's; earlier
    ones are drafts or quotes."""
    numbers = re.findall(rf'"{re.escape(field)}"\s*:\s*"?(-?\d+(?:\.\d+)?)',
                         strip_reasoning(text))
    return float(numbers[-1]) if numbers else None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"[:120]


_BRACKETED_ID = re.compile(r"\[\s*(\d+)\s*\]")
_BARE_ID = r"(?<![\w.])\d+(?!\w|\.\d)"
# Two or more bare ids joined by ">" or ",": the ranking itself, so numbers in the
# prose around it are not read as ids.
_ID_RUN = re.compile(rf"{_BARE_ID}(?:\s*[>,]\s*{_BARE_ID})+")
# A count written before a ranking ("Top 3:", "the 5 most relevant") is not an id.
_COUNT = re.compile(r"\b(?:top|best)\s+\d+\b|\b\d+\s+(?:most|best|passages)\b",
                    re.IGNORECASE)


def _bare_ids(body: str) -> list[int]:
    """Ids of a ranking written without brackets: the longest run of ids joined by ">"
    or "," (the last of equally long ones), else every number that is not a count."""
    runs = [re.findall(r"\d+", run) for run in _ID_RUN.findall(body)]
    if runs:
        _, longest = max(enumerate(runs), key=lambda indexed: (len(indexed[1]), indexed[0]))
        return [int(n) for n in longest]
    return [int(n) for n in re.findall(_BARE_ID, _COUNT.sub(" ", body))]


def read_permutation(text: str, size: int) -> tuple[list[int], ParseStatus, str]:
    """Reads a ranking like `[3] > [1] > [2]` into 0-based indices of all `size` items.

    Duplicates and out-of-range ids are dropped, missing ids are appended in their prior
    order; each such fix makes the status REPAIRED. A reply with no usable id at all is a
    FALLBACK that keeps the prior order.
    """
    body, unclosed = answer_text(text)
    bracketed = [int(n) for n in _BRACKETED_ID.findall(body)]
    numbers = bracketed or _bare_ids(body)
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
    if not bracketed:
        notes.append("ids without brackets")
    note = _join(*notes, unclosed)
    return order + missing, ParseStatus.REPAIRED if note else ParseStatus.OK, note


_WHOLE_LABEL = re.compile(r"\W*(?:passage\s*[:#]?\s*)?\[?\s*([a-z])\s*\]?\W*", re.IGNORECASE)
_BRACKETED_LABEL = re.compile(r"\[\s*([A-Za-z])\s*\]")
_NAMED_LABEL = re.compile(r"\b(?i:passage)\s*[:#]?\s*([A-Z])(?![\w'’-])")
_LONE_CAPITAL = re.compile(r"(?<![\w.'’-])([A-Z])(?![\w'’-]|\.\w)")
# After "I" or "A", a word other than "is" makes it the pronoun or the article
# ("I pick [C]", "A passage about"), not a label ("A is best", "The answer is A.").
_PROSE_AFTER = re.compile(r"\s+(?!is\b)[A-Za-z]{2,}")


def _label_mentions(body: str) -> Iterator[str]:
    """Letters the reply may name as its label, surest first: the whole reply, then
    bracketed letters, then `Passage X`, then capitals standing alone as words."""
    whole = _WHOLE_LABEL.fullmatch(body)
    if whole:
        yield whole.group(1)
    for pattern in (_BRACKETED_LABEL, _NAMED_LABEL):
        yield from (match.group(1) for match in pattern.finditer(body))
    for match in _LONE_CAPITAL.finditer(body):
        if match.group(1) in ("A", "I") and _PROSE_AFTER.match(body, match.end()):
            continue
        yield match.group(1)


def read_label(text: str, labels: list[str]) -> int | None:
    """Index of the label the reply names (`B`, `[B]`, `Passage B`, `I pick [C]`), or
    None. Text in a reasoning block, closed or not, is never read: the callers then
    fall back to the label logprobs and count it."""
    for letter in _label_mentions(strip_reasoning(text)):
        if letter.upper() in labels:
            return labels.index(letter.upper())
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


_ID_FIELDS = ("id", "passage", "passage_id", "doc", "doc_id", "docid", "index")
_SCORE_FIELDS = ("score", "relevance", "rating")
# An id: score pair in broken JSON. A quoted ("3": 7) or bracketed ([3]: 7) id is a
# key; a bare one must have a space after its colon (3: 7), because times and ratios
# in prose are written without one ("at 10:30", "3:1") and are not id 10, score 30.
# A score followed by ":digits" is itself part of a time.
_PAIR = re.compile(r'(?:"\s*\[?(\d+)\]?\s*"\s*:|\[\s*(\d+)\s*\]\s*:|(?<![\w.:])(\d+):(?=\s))'
                   r'\s*"?(-?\d+(?:\.\d+)?)(?!\d|\.\d|:\d)')
# Scales a reply may use instead of the one asked for (a 0-100 answer to a 0-10 question).
_WIDER_SCALES = (10.0, 100.0)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _score_entries(value: object) -> tuple[list[tuple[object, object]], str] | None:
    """(id, score) entries of a JSON value in a shape a model may answer in, and a note
    naming a shape other than the asked-for {"1": 7, ...}; None for no such shape."""
    if isinstance(value, dict):
        if any(str(key).strip().strip("[]").isdigit() for key in value):
            return list(value.items()), ""
        nested = [(key, inner) for key, inner in value.items() if isinstance(inner, dict | list)]
        inner_entries = _score_entries(nested[0][1]) if len(nested) == 1 else None
        if inner_entries is None:
            return None
        return inner_entries[0], _join(f"read the scores under {nested[0][0]!r}",
                                       inner_entries[1])
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(item, dict) for item in value):
        entries = [(next((item[f] for f in _ID_FIELDS if f in item), None),
                    next((item[f] for f in _SCORE_FIELDS if f in item), None))
                   for item in value]
        entries = [(i, s) for i, s in entries if i is not None and s is not None]
        return (entries, "read a list of id/score objects") if entries else None
    if all(_number(item) is not None and not isinstance(item, str) for item in value):
        return list(enumerate(value, start=1)), "read a list of scores in passage order"
    return None


def _json_values(text: str) -> Iterator[object]:
    """Every outermost JSON object or list embedded in text, in order."""
    decoder, index = json.JSONDecoder(), 0
    while True:
        starts = [i for i in (text.find("{", index), text.find("[", index)) if i != -1]
        if not starts:
            return
        try:
            value, index = decoder.raw_decode(text, min(starts))
        except (ValueError, RecursionError):
            index = min(starts) + 1
            continue
        yield value


def _read_score_entries(body: str) -> tuple[list[tuple[object, object]], list[str]]:
    """(id, score) entries of a reply and the repairs made to read them: the reply as
    JSON, else the last JSON value in it that holds scores, else id: score pairs."""
    try:
        whole = _score_entries(json.loads(body))
    except (ValueError, RecursionError):
        whole = None
    if whole is not None:
        return whole[0], [whole[1]]
    for value in reversed(list(_json_values(body))):
        # A bare list of numbers amid prose is more likely "[3]" naming a passage.
        if isinstance(value, list) and not all(isinstance(item, dict) for item in value):
            continue
        embedded = _score_entries(value)
        if embedded is not None:
            return embedded[0], ["cut text around the JSON", embedded[1]]
    pairs = [(quoted or bracketed or bare, score)
             for quoted, bracketed, bare, score in _PAIR.findall(body)]
    return pairs, ["read id: score pairs from broken JSON"] if pairs else []


def _reply_scale(scores: list[float], max_score: float) -> float:
    """The scale a reply's scores are on. A reply is read on a wider scale (the smallest
    of 0-10 and 0-100 that holds its top score) when every score is above the maximum
    asked for, or its top score is above twice that maximum: 85 among scores asked on
    0-10 is a percentage, not a 10. A single score just above the maximum among others
    inside it (12 beside 7) is an overshoot, clamped. Above 100 nothing is rescaled."""
    top = max(scores)
    if top <= max_score or not (min(scores) > max_score or top > 2 * max_score):
        return max_score
    return next((scale for scale in _WIDER_SCALES if max_score < scale and top <= scale),
                max_score)


def read_id_scores(text: str, size: int, max_score: int
                   ) -> tuple[dict[int, float], ParseStatus, str]:
    """Scores per 0-based position, scaled to [0, 1]. Besides the asked-for
    {"1": 7, ...}, reads {"scores": {...}}, a list of {"id": 1, "score": 7} and a list
    of scores in passage order. Other shapes, missing ids, rescaled or clamped values
    and text around the JSON are repairs; no readable score at all is a FALLBACK."""
    body, unclosed = answer_text(text)
    entries, notes = _read_score_entries(body)
    read: dict[int, float] = {}
    for key, value in entries:
        label, number = str(key).strip().strip("[]"), _number(value)
        if label.isdigit() and 1 <= int(label) <= size and number is not None:
            read[int(label) - 1] = number
    if not read:
        return {}, ParseStatus.FALLBACK, f"no scores in reply {text[:40]!r}"
    scale = _reply_scale(list(read.values()), max_score)
    if scale != max_score:
        notes.append(f"scores on 0-{scale:g}, not 0-{max_score:g}; rescaled")
    clamped = sum(not 0 <= number <= scale for number in read.values())
    scores = {i: min(max(number, 0.0), scale) / scale for i, number in read.items()}
    if clamped:
        notes.append(f"clamped {clamped} scores to 0-{scale:g}")
    if len(scores) < size:
        notes.append(f"{size - len(scores)} ids missing; not scored")
    note = _join(*notes, unclosed)
    return scores, ParseStatus.REPAIRED if note else ParseStatus.OK, note
