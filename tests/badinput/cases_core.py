"""Bad input common to every command: unknown apps/verbs and options."""
from __future__ import annotations

from .harness import BadCase

CASES = [
    BadCase("core-unknown-app", lambda t: ["nosuchapp"], exit_code=2, match="nosuchapp"),
    BadCase("core-unknown-option", lambda t: ["doctor", "--frobnicate"], exit_code=2, match="--frobnicate"),
]
