"""experiments/notebooks/compare_fronts.ipynb runs end to end against two tiny runs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "experiments" / "notebooks" / "compare_fronts.ipynb"


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif "data" in out:
                parts.append(str(out["data"].get("text/plain", "")))
    return "\n".join(parts)


@pytest.mark.slow
def test_compare_fronts_notebook_executes(tiny_runs, tmp_path, monkeypatch) -> None:
    run_a, run_b = tiny_runs
    monkeypatch.setenv("OPENNAC_RUN_A", str(run_a))
    monkeypatch.setenv("OPENNAC_RUN_B", str(run_b))
    monkeypatch.setenv("OPENNAC_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "strip outputs"
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()  # fmt: skip
    text = _text(nb)
    assert f"run A: {run_a}" in text and f"run B: {run_b}" in text
    assert "hypervolume (common point)" in text
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert "picked trial" in text and "ONNX Runtime:" in text and "detections" in text
    assert (tmp_path / "picked.onnx").stat().st_size > 10_000
    assert (tmp_path / "pareto.html").is_file()
