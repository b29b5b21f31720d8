"""Importing the package turns on PyTorch's huge-page allocation for large CPU tensors (pipeline/__init__.py)."""
import os
import subprocess
import sys

from conftest import ROOT

SNIPPET = "import os, pipeline; print(os.environ['THP_MEM_ALLOC_ENABLE'])"


def _imported_value(env: dict) -> str:
    out = subprocess.run([sys.executable, "-c", SNIPPET], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def test_huge_pages_on_by_default_and_a_users_choice_kept():
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    assert _imported_value(env) == "1"
    assert _imported_value(env | {"THP_MEM_ALLOC_ENABLE": "0"}) == "0"
