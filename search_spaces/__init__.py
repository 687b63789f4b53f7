"""OpenNAC search spaces: define-by-run functions from an Optuna-style trial to an ArchSpec.

Importing this package registers the built-in spaces ``yolo_nas`` and ``yolo_nas_pose``. It
imports only ``models`` (never Optuna): a space works on any object with ``suggest_int`` and
``suggest_categorical``.

Example:
    >>> from search_spaces import RandomTrial, get_space
    >>> space = get_space("yolo_nas_pose", width_scale=0.25)
    >>> spec = space.sample(RandomTrial(seed=3))
    >>> spec.task, spec.num_keypoints
    ('pose', 17)
"""

from __future__ import annotations

from search_spaces import yolo_nas, yolo_nas_pose  # noqa: F401  (registers the spaces)
from search_spaces.base import SearchSpace, SpaceError
from search_spaces.registry import get_space, list_spaces, register_space
from search_spaces.trials import RandomTrial, ReplayTrial, TrialValueError
from search_spaces.yolo_nas import YoloNasSpace, scale_channels, scale_spec
from search_spaces.yolo_nas_pose import YoloNasPoseSpace

__all__ = [
    "RandomTrial",
    "ReplayTrial",
    "SearchSpace",
    "SpaceError",
    "TrialValueError",
    "YoloNasPoseSpace",
    "YoloNasSpace",
    "get_space",
    "list_spaces",
    "register_space",
    "scale_channels",
    "scale_spec",
]
