"""Keep card hashes stable when a card format gains optional fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["omit_added_defaults"]


def omit_added_defaults(card: BaseModel, data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Drop the later-added fields `names` from a card dict while they hold their defaults.

    A card written before those fields existed then dumps, and so hashes, exactly as it did:
    runs measured before and after the change stay replicas of one configuration.
    """
    for name in names:
        info = type(card).model_fields[name]
        key = info.alias or name
        if key in data and data[key] == info.get_default(call_default_factory=True):
            del data[key]
    return data
