"""rebal's domain: typed identifiers, exact money and quantities, and the records every layer
shares (accounts, models, holdings, lots, orders, runs). Plain frozen values with no I/O; the
core computes on arrays and converts to and from these at its edge."""
