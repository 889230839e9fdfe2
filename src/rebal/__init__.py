"""rebal: portfolio rebalancing over a whole book of accounts."""

__version__ = "0.1.0"
