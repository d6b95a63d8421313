"""The tuning methods: which parameters of a tower are trained (see :mod:`mlilt.tuning.registry`).

Each method is one file here that registers itself when imported. The lines below are the registrations,
in the order the study, the tables and ``--help`` list the methods; a new method is one file plus one line.
"""

# isort: off
from mlilt.tuning import frozen  # noqa: F401
from mlilt.tuning import layernorm  # noqa: F401
from mlilt.tuning import bitfit  # noqa: F401
from mlilt.tuning import ia3  # noqa: F401
from mlilt.tuning import lora  # noqa: F401
from mlilt.tuning import adapters  # noqa: F401
from mlilt.tuning import full  # noqa: F401
# isort: on
