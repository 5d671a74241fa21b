"""The null backend: answers at once with zeros (LoadGen's null SUT), for overhead and fast tests."""

from runner.backends.null.backend import NullBackend

__all__ = ["NullBackend"]
