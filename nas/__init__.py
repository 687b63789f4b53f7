"""OpenNAC engine: experiments, Ray Tune + Optuna orchestration, results, variants, CLI."""

from __future__ import annotations
