"""The towers: thin wrappers over transformers (text) and timm (vision), the built-in offline ones, and the
registry that builds a tower from its name (:mod:`mlilt.towers.registry`)."""
