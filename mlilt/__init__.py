"""mlilt: LilT-style parameter-efficient image-text models for languages with little paired data.

Khan & Fu, "Contrastive Alignment of Vision to Language Through Parameter-Efficient Transfer
Learning", ICLR 2023.
"""

__version__ = "0.1.0"


def load(path, revision=None):
    """A ready :class:`~mlilt.model.DualEncoder` from an adapter or run folder, or a Hub id such as ``user/mlilt-sw``.

    A path that exists locally is loaded from disk (:mod:`mlilt.adapter_files`); anything else is fetched
    from the Hugging Face Hub through its cache (:mod:`mlilt.hub`), at ``revision`` if given.
    """
    from mlilt.adapter_files import load as _load

    return _load(path, revision=revision)
