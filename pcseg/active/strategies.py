"""Acquisition strategies: one score per point, lower = asked first (HPAL's convention, §17.2-17.3).

Every strategy has the same signature, so the selection code never knows which one it runs:
``strategy.score(scene, coord, probs) -> (N,) float64``. ``ACQUISITION`` lists them by name so tests
and configs can enumerate them.

- ``hpal``: HMMU scores, selected with feature-distance suppression (FDS on by default);
- ``hmmu``: HMMU scores without FDS (the ablation);
- ``margin``: point-level min-margin (HPAL's ``MMU``);
- ``entropy``: mean of p*log(p + 1e-12) over classes = -H/C (ascending = most uncertain first);
- ``random``: uniform scores keyed by (seed, round, scene), so a resumed run draws the same points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from pcseg.active.hmmu import DEFAULT_LEVELS, DEFAULT_WEIGHTS, hmmu_scores, top2_margin
from pcseg.utils.errors import ConfigError
from pcseg.utils.rng import numpy_rng


@dataclass
class Strategy:
    """A named scoring rule.

    Attributes:
        name: registry name.
        needs_probs: whether scores depend on the network (False only for ``random``).
        fds_default: whether feature-distance suppression is on unless the config says otherwise.
    """

    name: str
    needs_probs: bool = True
    fds_default: bool = False
    seed: int = 0
    round_index: int = 0
    levels: tuple[float, ...] = DEFAULT_LEVELS
    weights: tuple[float, ...] = DEFAULT_WEIGHTS
    workers: int = 1
    _fn: Callable[..., np.ndarray] = field(default=None, repr=False)  # type: ignore[assignment]

    def score(self, scene: str, coord: np.ndarray, probs: np.ndarray | None) -> np.ndarray:
        """Scores of one scene's points.

        Args:
            scene: scene name (keys the random strategy).
            coord: (N, 3) coordinates in metres.
            probs: (N, C) class probabilities, or None for strategies that do not use them.

        Returns:
            (N,) float64, lower = more informative.
        """
        if self.needs_probs and probs is None:
            raise ValueError(f"strategy {self.name} needs class probabilities")
        return self._fn(self, scene, coord, probs)


def _random(s: Strategy, scene: str, coord: np.ndarray, probs: np.ndarray | None) -> np.ndarray:
    return numpy_rng(s.seed, "al_random", s.round_index, scene).random(coord.shape[0])


def _entropy(s: Strategy, scene: str, coord: np.ndarray, probs: np.ndarray) -> np.ndarray:
    p = probs.astype(np.float64)
    return np.mean(p * np.log(p + 1e-12), axis=1)


def _margin(s: Strategy, scene: str, coord: np.ndarray, probs: np.ndarray) -> np.ndarray:
    return top2_margin(probs)


def _hmmu(s: Strategy, scene: str, coord: np.ndarray, probs: np.ndarray) -> np.ndarray:
    return hmmu_scores(coord, probs, s.levels, s.weights, workers=s.workers)  # type: ignore[return-value]


#: name -> (score function, needs_probs, FDS on by default)
ACQUISITION: dict[str, tuple[Callable[..., np.ndarray], bool, bool]] = {
    "hpal": (_hmmu, True, True),
    "hmmu": (_hmmu, True, False),
    "margin": (_margin, True, False),
    "entropy": (_entropy, True, False),
    "random": (_random, False, False),
}


def build_strategy(
    name: str,
    seed: int = 0,
    round_index: int = 0,
    levels: Sequence[float] = DEFAULT_LEVELS,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    workers: int = 1,
) -> Strategy:
    """Look up a strategy by name (``al.strategy``)."""
    if name not in ACQUISITION:
        raise ConfigError(f"al.strategy={name!r} is not one of {', '.join(sorted(ACQUISITION))}")
    fn, needs_probs, fds_default = ACQUISITION[name]
    levels, weights = tuple(float(x) for x in levels), tuple(float(x) for x in weights)
    if len(weights) != len(levels) + 1:
        raise ConfigError(f"al.hmmu: {len(levels)} levels need {len(levels) + 1} weights, got {len(weights)}")
    return Strategy(name, needs_probs, fds_default, int(seed), int(round_index), levels, weights, workers, fn)


def strategy_from_config(al_cfg: Any, seed: int, round_index: int) -> Strategy:
    """Build the strategy of an ``al`` config node for one round."""
    hm = al_cfg.get("hmmu", {}) or {}
    return build_strategy(
        str(al_cfg.get("strategy", "hpal")),
        seed=seed,
        round_index=round_index,
        levels=hm.get("levels", DEFAULT_LEVELS),
        weights=hm.get("weights", DEFAULT_WEIGHTS),
        workers=int(al_cfg.get("workers", 1)),
    )
