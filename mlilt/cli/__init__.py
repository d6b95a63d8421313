"""The ``mlilt`` command line (entry point :func:`mlilt.cli.main.main`); ``python -m mlilt.cli`` runs it too."""
