"""The command line (``rebal``): an entry point, so it points numba's cache at this source
version's directory before any of its commands imports a kernel."""

import rebal.versioned_cache  # noqa: F401 - first, before any kernel is defined
