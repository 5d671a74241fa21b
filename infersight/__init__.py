"""infersight's front doors: the command line (`infersight ...`); the REST API comes later."""

from importlib import metadata

try:
    __version__ = metadata.version("infersight")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
