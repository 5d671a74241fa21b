"""infersight's front doors: the command line (`infersight ...`); the REST API comes later."""

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """`__version__`, read from the installed distribution when first asked for: importing importlib.metadata
    here would widen the start-up window in which Ctrl-C cannot yet be handled (infersight/cli)."""
    if name != "__version__":
        raise AttributeError(f"module 'infersight' has no attribute {name!r}")
    from importlib import metadata

    try:
        return metadata.version("infersight")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"
