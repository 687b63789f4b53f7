"""The target-device check: a front measured on the wrong device is worthless.

Names are compared as words, case-insensitively, after dropping vendor words ("nvidia",
"tesla", "geforce", "(r)", "(tm)", "corporation"): the target's words must appear, in order, among
the device's words. So "NVIDIA T4" matches "Tesla T4", "H100" matches "NVIDIA H100 80GB HBM3",
but "A10" does not match "NVIDIA A100-SXM4-80GB". The target "cpu" matches any CPU, "gpu" (or
"cuda") any GPU.

Example:
    >>> check_target("NVIDIA T4", "Tesla T4")
    True
    >>> check_target("A10", "NVIDIA A100-SXM4-80GB", allow_mismatch=True)
    False
"""

from __future__ import annotations

import re
import warnings

from evaluators.latency.result import LatencyError

VENDOR_WORDS = frozenset({"nvidia", "tesla", "geforce", "corporation", "r", "tm"})
_GPU_WORDS = frozenset(
    {"nvidia", "tesla", "geforce", "quadro", "rtx", "gtx", "radeon", "instinct", "cuda", "gpu"}
)


def name_words(name: str) -> list[str]:
    """Lower-case alphanumeric words of a device name, vendor words removed."""
    words = re.findall(r"[a-z0-9]+", name.lower())
    return [w for w in words if w not in VENDOR_WORDS]


def looks_like_gpu(device_name: str) -> bool:
    words = set(re.findall(r"[a-z0-9]+", device_name.lower()))
    return bool(words & _GPU_WORDS) or bool(re.search(r"\b[ahlbv]\d{2,3}\b", device_name.lower()))


def names_match(target: str, device_name: str, device: str | None = None) -> bool:
    """True when ``device_name`` (on ``device`` kind "cpu"/"cuda", if known) is ``target``."""
    t = target.strip().lower()
    kind = None if device is None else ("cuda" if device.startswith("cuda") else "cpu")
    if t == "cpu":
        return kind == "cpu" if kind else not looks_like_gpu(device_name)
    if t in ("gpu", "cuda"):
        return kind == "cuda" if kind else looks_like_gpu(device_name)
    want, have = name_words(target), name_words(device_name)
    if not want:
        return False
    n = len(want)
    return any(have[i : i + n] == want for i in range(len(have) - n + 1))


def check_target(
    target: str | None,
    device_name: str,
    allow_mismatch: bool = False,
    device: str | None = None,
) -> bool:
    """Refuse to measure for ``target`` on a device named ``device_name``.

    Returns True on a match (or when no target is set). On a mismatch raises LatencyError,
    unless ``allow_mismatch``: then warns and returns False.
    """
    if target is None or not str(target).strip():
        return True
    if names_match(str(target), device_name, device):
        return True
    message = (
        f"target device {target!r} does not match the measuring device {device_name!r}: "
        "latencies measured here would not describe the target "
        "(measure on the target, or allow the mismatch: allow_mismatch=True, "
        "--allow-device-mismatch)"
    )
    if not allow_mismatch:
        raise LatencyError(message)
    warnings.warn(message, stacklevel=2)
    return False


__all__ = ["VENDOR_WORDS", "check_target", "looks_like_gpu", "name_words", "names_match"]
