"""`cvsuite doctor` names what is really importable and which back-ends the apps can use."""
from __future__ import annotations

import json

from shared.cli import module_report


def test_module_report_names_the_providing_distribution() -> None:
    assert module_report("numpy").split()[0].count(".") >= 1 and "(" not in module_report("numpy")
    assert module_report("sklearn").endswith("(scikit-learn)")
    assert module_report("surely_not_a_module_xyz") == "not installed"


def test_doctor_reports_open3d_truthfully_and_capabilities(run_cli) -> None:
    code, out, err = run_cli(["doctor", "--json"])
    assert code == 0, err
    report = json.loads(out)
    # open3d-cpu (a requirement) provides `open3d`: never "not installed" next to a working import
    assert report["packages"]["open3d"] == "0.20.0 (open3d-cpu)"
    # make install links libusb into the open3d package, so plain scripts import it too
    assert report["capabilities"]["open3d in your own scripts"] == "yes"
    caps = report["capabilities"]
    assert caps["H.264 video (ffmpeg from imageio-ffmpeg)"].startswith("yes")
    assert caps["mot: --detector hog (OpenCV HOG people detector)"] == "yes"
    assert caps["points: PNG renderer"].split()[0] in ("open3d", "matplotlib")
    assert all(value == "ok" for value in report["weights"].values()), report["weights"]
