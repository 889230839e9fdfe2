"""Brokers behind :mod:`rebal.ports.broker`: the simulated broker (the default) and, later, real
ones."""
