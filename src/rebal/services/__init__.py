"""Use cases: what rebal does, written once against the ports, for every entry point (the
command line today; the REST API and the scheduler next) to call."""
