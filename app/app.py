"""Hugging Face Spaces entry point for the mlilt demo: ``python app/app.py [mlilt demo options]``.

Thin by design: everything lives in the library (``mlilt demo --help`` lists the options). On Spaces,
set ``GRADIO_SERVER_NAME=0.0.0.0`` in the Space's settings; locally the app listens on 127.0.0.1.
"""

import os
import sys

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

from mlilt.cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
