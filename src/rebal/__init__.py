"""rebal: portfolio rebalancing over a whole book of accounts."""

from rebal.compiled import use_versioned_cache

__version__ = "0.1.0"

# Before any kernel is defined: compiled code is cached per version of its source.
use_versioned_cache()
