"""Loading ``.pt`` / ``.pth`` files that may come from elsewhere, safe by construction.

Every checkpoint OpenNAC reads (its own, a parent, a teacher, a ``--init`` file, a
super-gradients import) goes through `safe_torch_load`: ``torch.load(weights_only=True)``, whose
unpickler builds only tensors, dicts, lists, tuples, strings, numbers and the few plain types
of `ALLOWED` (numpy scalars and dtypes, which training frameworks store as metric values).
Anything else -- a class instance, a function, a ``__reduce__`` that would run code -- is
refused before it is built, and `UnsafeCheckpointError` says which global the file needs and
how to convert it where the file is trusted (keep only the tensors)::

    python -c "import torch; d = torch.load('in.pth', weights_only=False); \\
    torch.save({k: v for k, v in d.items() if k in ('net', 'ema_net')}, 'in.weights.pth')"

Example:
    >>> import tempfile, pathlib, torch
    >>> from models.safeload import safe_torch_load
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "w.pt"
    >>> torch.save({"w": torch.zeros(2), "epoch": 3}, path)
    >>> sorted(safe_torch_load(path))
    ['epoch', 'w']
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch


class UnsafeCheckpointError(ValueError):
    """A file that needs more than plain types to load; the message says which and what to do."""


def _numpy_allowed() -> list[Any]:
    """numpy scalars (``np.float64(0.41)``: a metric value) and their dtypes, under the names
    both numpy 1 (``numpy.core``) and numpy 2 (``numpy._core``) write into pickles."""
    core = getattr(np, "_core", None) or np.core  # numpy 2 / numpy 1
    scalar = core.multiarray.scalar
    out: list[Any] = [
        np.dtype,
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
    ]
    for kind in (np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
                 np.uint8, np.bool_):  # fmt: skip
        out.append(type(np.dtype(kind)))  # numpy.dtypes.Float64DType, ...
    return out


# The plain types beyond torch's own (tensors, containers, numbers, strings) a file may hold.
ALLOWED: list[Any] = _numpy_allowed()

CONVERT_HINT = (
    "if you trust the file, convert it where it was made (or in a sandbox): "
    "d = torch.load(path, weights_only=False); torch.save(<its tensors / state_dicts only>, "
    "new_path), e.g. torch.save(d['ema_net'], 'weights.pth') for super-gradients "
    "(docs/import.md, 'Safe loading')"
)


def safe_torch_load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with `ALLOWED` and nothing else.

    `UnsafeCheckpointError` when the file needs another global (nothing in it has run);
    ``FileNotFoundError`` when it is absent; other errors (a damaged or foreign file) pass
    through for the caller to name.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with torch.serialization.safe_globals(ALLOWED):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found is None:  # a damaged file: the caller names it
            raise
        raise UnsafeCheckpointError(
            f"{path}: refused by torch.load(weights_only=True): it needs {found.group(1)}, "
            "which is not a tensor, number, string, list or dict; unpickling it could run "
            f"code, so nothing in it was loaded; {CONVERT_HINT}"
        ) from None


__all__ = ["ALLOWED", "CONVERT_HINT", "UnsafeCheckpointError", "safe_torch_load"]
