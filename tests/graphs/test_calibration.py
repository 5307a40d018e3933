"""LATTICE's calibration recovers known latent scores from synthetic noisy slates."""

from __future__ import annotations

import numpy as np

from rerankgraph.graphs.calibration import Observation, calibrate


def _slates(latent: np.ndarray, bias_sd: float, noise_sd: float, seed: int
            ) -> tuple[list[Observation], np.ndarray]:
    """Three shuffled passes over the items in slates of 10; returns the observations
    and each item's mean raw score."""
    rng = np.random.default_rng(seed)
    observations, slate = [], 0
    for _ in range(3):
        order = rng.permutation(len(latent))
        for start in range(0, len(latent), 10):
            bias = rng.normal(0, bias_sd)
            for item in order[start:start + 10]:
                score = float(np.clip(latent[item] + bias + rng.normal(0, noise_sd), 0, 1))
                observations.append(Observation(slate, str(item), score))
            slate += 1
    raw = np.array([np.mean([o.score for o in observations if o.item == str(i)])
                    for i in range(len(latent))])
    return observations, raw


def _centred_error(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    # The model fixes scores only up to one common offset (a shift of every latent is
    # undone by the biases), so errors are measured after removing the means.
    return np.abs((estimate - estimate.mean()) - (truth - truth.mean()))


def test_recovers_latents_under_slate_bias_and_noise():
    """Tolerance: mean error under 0.04 (raw means err about 0.07 on these slates), and
    less than 0.6x the raw means' error, on each of 5 seeds."""
    for seed in range(5):
        truth = np.random.default_rng(100 + seed).uniform(0.1, 0.9, 60)
        observations, raw = _slates(truth, bias_sd=0.15, noise_sd=0.03, seed=seed)
        fit = calibrate(observations)
        estimate = np.array([fit.latent[str(i)] for i in range(60)])
        error = _centred_error(estimate, truth).mean()
        assert error < 0.04, (seed, error)
        assert error < 0.6 * _centred_error(raw, truth).mean()
        assert 0.9 < fit.scale < 1.1 and fit.rmse < 0.06


def test_noise_free_unbiased_slates_give_the_scores_back():
    truth = np.random.default_rng(7).uniform(0.1, 0.9, 40)
    observations, _ = _slates(truth, bias_sd=0.0, noise_sd=0.0, seed=3)
    fit = calibrate(observations)
    estimate = np.array([fit.latent[str(i)] for i in range(40)])
    assert np.abs(estimate - truth).max() < 0.01
    assert all(abs(b) < 0.01 for b in fit.bias.values())


def test_an_item_seen_in_two_slates_is_placed_by_the_shared_anchor():
    # Slate 0 reads everything 0.2 low; the anchor "a" seen in both slates reveals it.
    observations = [Observation(0, "a", 0.3), Observation(0, "x", 0.6),
                    Observation(1, "a", 0.5), Observation(1, "y", 0.6)]
    fit = calibrate(observations)
    assert fit.latent["x"] > fit.latent["y"]


def test_empty_input_is_an_empty_fit():
    fit = calibrate([])
    assert fit.latent == {} and fit.bias == {} and fit.scale == 1.0
