"""mlilt: LilT-style parameter-efficient image-text models for languages with little paired data.

Khan & Fu, "Contrastive Alignment of Vision to Language Through Parameter-Efficient Transfer
Learning", ICLR 2023.
"""

__version__ = "0.1.0"


def load(path):
    """A ready :class:`~mlilt.model.DualEncoder` from an adapter or run folder (see :mod:`mlilt.adapter_files`)."""
    from mlilt.adapter_files import load as _load

    return _load(path)
