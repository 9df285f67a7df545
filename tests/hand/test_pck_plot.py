"""The FreiHAND PCK picture: coinciding curves are drawn once with both names, axes say what they mean."""
from __future__ import annotations

import numpy as np


def test_coinciding_curves_are_merged_and_axes_explained(tmp_path, monkeypatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from apps.hand.evaluate import plot_pck

    captured = {}
    real_close = plt.close

    def keep(fig=None):
        captured["fig"] = fig
        return real_close(fig)

    monkeypatch.setattr(plt, "close", keep)
    t = np.linspace(0, 5, 50)
    same = np.clip(t / 3, 0, 1).tolist()
    scores = {"pck_curves": {"xyz": {"thresholds_cm": t.tolist(), "pck": same},
                             "xyz_al": {"thresholds_cm": t.tolist(), "pck": np.clip(t / 2, 0, 1).tolist()},
                             "mesh": {"thresholds_cm": t.tolist(), "pck": same}},
              "xyz_auc3d": 0.5, "xyz_al_auc3d": 0.6, "mesh_auc3d": 0.5, "frames": 32}
    plot_pck(scores, tmp_path / "pck.png")
    ax = captured["fig"].axes[0]
    assert len(ax.lines) == 2                                   # xyz and mesh coincide: one line
    labels = [line.get_label() for line in ax.lines]
    assert any("keypoints" in lab and "vertices" in lab for lab in labels)
    assert "cm" in ax.get_xlabel() and "PCK" in ax.get_ylabel()
    assert (tmp_path / "pck.png").stat().st_size > 1000
