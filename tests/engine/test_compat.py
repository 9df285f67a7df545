"""The compat module makes broken upstream imports work without touching NumPy."""
from __future__ import annotations

import subprocess
import sys


def test_basicsr_imports_after_shared_in_a_fresh_interpreter():
    code = ("import shared, numpy; assert not hasattr(numpy, 'asfarray') or numpy.__version__ < '2'; "
            "from basicsr.data.degradations import random_mixed_kernels; "
            "from basicsr.metrics import calculate_psnr; "
            "import torchvision.transforms.functional_tensor as ft; "
            "from torchvision.transforms.functional import rgb_to_grayscale; "
            "assert ft.rgb_to_grayscale is rgb_to_grayscale; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


def test_without_shared_basicsr_is_broken():
    """Guards the reason the shim exists: if upstream fixes it, this tells us to drop the shim."""
    result = subprocess.run([sys.executable, "-c", "import basicsr"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "functional_tensor" in result.stderr
