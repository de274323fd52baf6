#!/usr/bin/env python3
"""``minicnn-train`` from a clone: the code lives in ``minicnn/cli/train.py`` (see its docstring)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this clone's minicnn first
from minicnn.cli.train import main  # noqa: E402

sys.exit(main())
