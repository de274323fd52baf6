#!/usr/bin/env python3
"""``minicnn-profile`` from a clone: the code lives in ``minicnn/cli/profile.py`` (see its docstring)."""
import pathlib
import sys

# This clone's minicnn first, and this folder off the path: a script named profile.py would otherwise
# stand in for the standard library's ``profile`` module (which cProfile, and so PyTorch, imports).
sys.path[0] = str(pathlib.Path(__file__).resolve().parents[1])
from minicnn.cli.profile import main  # noqa: E402

sys.exit(main())
