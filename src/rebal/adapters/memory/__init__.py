"""In-memory implementations of the ports, for tests and for simulations that need no store."""
