"""Zero-cost pre-screen: rank a pool of random architectures before training any.

``sampler.prescreen: {proxy: naswot, pool: 64, keep: 8}`` in an experiment draws ``pool``
distinct random architectures of the space (`SearchSpace.sample_random`, seeds from
``sampler.seed``), scores each with the training-free ``proxy`` (`evaluators.zerocost`: naswot,
synflow, zen; CPU, tiny inputs, deterministic) and enqueues the ``keep`` best as the study's
first trials, after the reference points (`nas.search`). The sampler then starts from them as
from any finished trials.

Example:
    >>> from search_spaces import get_space
    >>> best = prescreen(get_space("yolo_nas_pose", width_scale=0.25), "naswot", pool=3,
    ...                  keep=1, image_size=32, batch=4)                   # doctest: +SKIP
    >>> len(best), sorted(best[0])                                         # doctest: +SKIP
    (1, ['arch_id', 'params', 'score'])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from search_spaces import RandomTrial

PRESCREEN_IMAGE_SIZE = 64  # px: the proxies' input (a multiple of 32)
PRESCREEN_BATCH = 8


def check_prescreen(section: Any, fail: Callable[[str, str], None]) -> None:
    """Validate an experiment's ``sampler.prescreen`` (``fail(key, message)`` raises)."""
    from evaluators.zerocost import list_proxies

    known = list_proxies()
    if section.proxy not in known:
        fail("sampler.prescreen.proxy",
             f"expected one of {', '.join(known)}, got {section.proxy!r}")
    for key in ("pool", "keep"):
        value = getattr(section, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            fail(f"sampler.prescreen.{key}", f"expected an integer >= 1, got {value!r}")
    if section.keep > section.pool:
        fail("sampler.prescreen.keep",
             f"expected <= pool ({section.pool}), got {section.keep}")


def random_pool(space: Any, pool: int, seed: int = 0) -> list[dict[str, Any]]:
    """``pool`` distinct random architectures ``{params, arch_id, spec}`` (fewer when the space
    has fewer: at most ``20 * pool`` draws)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i in range(20 * pool):
        if len(out) >= pool:
            break
        trial = RandomTrial(seed=seed * 1_000_003 + i)
        spec = space.sample(trial)
        if spec.arch_id not in seen:
            seen.add(spec.arch_id)
            out.append({"params": dict(trial.params), "arch_id": spec.arch_id, "spec": spec})
    return out


def prescreen(space: Any, proxy: str, pool: int, keep: int, seed: int = 0,
              image_size: int = PRESCREEN_IMAGE_SIZE,
              batch: int = PRESCREEN_BATCH) -> list[dict[str, Any]]:
    """The ``keep`` best of ``pool`` random architectures by ``proxy``, best first:
    ``[{params, arch_id, score}]``. Deterministic for a given ``seed``."""
    from evaluators.zerocost import score_spec

    scored = []
    for cand in random_pool(space, pool, seed):
        score = score_spec(cand["spec"], proxy, image_size=image_size, batch=batch, seed=seed)
        scored.append({"params": cand["params"], "arch_id": cand["arch_id"], "score": score})
    scored.sort(key=lambda c: -c["score"])
    return scored[:keep]


def enqueue_prescreened(study: Any, space: Any, section: Any, seed: int,
                        limit: int | None = None) -> list[dict[str, Any]]:
    """Enqueue the pre-screen's best on ``study`` (at most ``limit``); returns them."""
    keep = section.keep if limit is None else max(0, min(section.keep, limit))
    if keep == 0:
        return []
    best = prescreen(space, section.proxy, section.pool, keep, seed)
    for cand in best:
        study.enqueue_trial(cand["params"], user_attrs={
            "prescreen": section.proxy, "prescreen_score": round(cand["score"], 6)})
    return best


__all__ = ["check_prescreen", "enqueue_prescreened", "prescreen", "random_pool"]
