"""A backend whose runtime is not installed here, as OpenVINO would be on a machine without it (for tests)."""

import infersight_runtime_that_is_not_installed  # noqa: F401 - the import fails, as a missing runtime's does
