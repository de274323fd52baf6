"""The installed commands (``[project.scripts]`` in ``pyproject.toml``): ``minicnn-train`` runs
``minicnn.cli.train:main``, ``minicnn-profile`` ``minicnn.cli.profile:main``. Each module here has a ``main(argv=None)`` returning the exit status;
``scripts/<name>.py`` in the repository are three-line shims calling the same ``main``."""
