#!/usr/bin/env python3
"""``minicnn-profile`` from a clone: the code lives in ``minicnn/cli/profile.py`` (see its docstring).

This file shares its name with the standard library's ``profile`` module, which ``cProfile`` (and so
PyTorch) imports: a script in this folder has the folder first on ``sys.path`` and would import this
file instead. Imported (not run), it therefore hands over the standard library's module.
"""
import os
import pathlib
import sys

if __name__ != "__main__":
    import importlib.util
    import sysconfig

    _spec = importlib.util.spec_from_file_location("profile", os.path.join(sysconfig.get_paths()["stdlib"],
                                                                            "profile.py"))
    _stdlib = importlib.util.module_from_spec(_spec)
    sys.modules[__name__] = _stdlib  # what the import statement returns
    _spec.loader.exec_module(_stdlib)
    globals().update({k: v for k, v in vars(_stdlib).items() if not k.startswith("__")})
else:
    # This clone's minicnn first, and this folder off the path (for the same reason).
    sys.path[0] = str(pathlib.Path(__file__).resolve().parents[1])
    from minicnn.cli.profile import main

    sys.exit(main())
