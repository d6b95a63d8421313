"""mlilt: LilT-style parameter-efficient image-text models for languages with little paired data.

Khan & Fu, "Contrastive Alignment of Vision to Language Through Parameter-Efficient Transfer
Learning", ICLR 2023.
"""

__version__ = "0.1.0"
