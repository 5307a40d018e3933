"""LATTICE's score calibration (mean-squared-error mode): slates are scored by an LLM
one at a time, so the same node reads higher in a weak slate than in a strong one.
Every observation y (item v in slate s, scaled to [0, 1]) is modelled as

    y  ~  scale * latent[v] + bias[s]

with one latent score per item, one bias per slate and one global scale, fitted by
weighted least squares. Calibration items, seen in several slates, tie the slates'
biases together. The fit is made unique by two small ridge terms: biases are pulled
towards 0 and each latent towards the mean of its own raw scores, so an item seen once
keeps about its raw score. Alternating closed-form updates, in numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Observation:
    slate: int
    item: str
    score: float  # in [0, 1]
    weight: float = 1.0


@dataclass(frozen=True)
class Calibration:
    latent: dict[str, float]
    bias: dict[int, float]
    scale: float
    rmse: float  # weighted residual of the fit


def calibrate(observations: Sequence[Observation], *, bias_ridge: float = 0.5,
              latent_ridge: float = 0.05, rounds: int = 30) -> Calibration:
    """Fits latent scores, slate biases and the scale; empty input gives an empty fit."""
    if not observations:
        return Calibration({}, {}, 1.0, 0.0)
    items = sorted({o.item for o in observations})
    slates = sorted({o.slate for o in observations})
    item_index = {item: i for i, item in enumerate(items)}
    slate_index = {slate: i for i, slate in enumerate(slates)}
    v = np.array([item_index[o.item] for o in observations])
    s = np.array([slate_index[o.slate] for o in observations])
    y = np.array([o.score for o in observations], dtype=np.float64)
    w = np.array([o.weight for o in observations], dtype=np.float64)

    weight_per_item = np.bincount(v, w, len(items))
    prior = np.bincount(v, w * y, len(items)) / np.maximum(weight_per_item, 1e-12)
    latent, bias, scale = prior.copy(), np.zeros(len(slates)), 1.0
    for _ in range(rounds):
        residual = y - bias[s]
        latent = ((np.bincount(v, w * residual, len(items)) * scale + latent_ridge * prior)
                  / (weight_per_item * scale**2 + latent_ridge))
        bias = (np.bincount(s, w * (y - scale * latent[v]), len(slates))
                / (np.bincount(s, w, len(slates)) + bias_ridge))
        fitted = latent[v]
        denominator = float(np.sum(w * fitted**2))
        if denominator > 1e-12:
            scale = max(float(np.sum(w * fitted * (y - bias[s]))) / denominator, 1e-3)
    residual = y - scale * latent[v] - bias[s]
    rmse = float(np.sqrt(np.sum(w * residual**2) / np.sum(w)))
    # Reported on the slates' own scale, so a latent reads like a calibrated 0-1 score.
    return Calibration(latent={item: float(scale * latent[i]) for item, i in item_index.items()},
                       bias={slate: float(bias[i]) for slate, i in slate_index.items()},
                       scale=scale, rmse=rmse)
