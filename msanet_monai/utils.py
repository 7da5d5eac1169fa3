"""Small helpers the bundle configs call."""

from __future__ import annotations

__all__ = ["as_flag"]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", "none", ""}


def as_flag(value: object) -> bool:
    """A config switch as a bool, whether it came from JSON (``true``) or the command line.

    ``python -m monai.bundle run ... --crop_thorax false`` hands the config the *string* ``"false"``
    (fire reads only Python literals such as ``False``), and a non-empty string is truthy; configs
    therefore read switches through this function.

    Raises:
        ValueError: a value that is neither a bool, a number nor one of true/false, yes/no, on/off, 1/0.
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"not a true/false switch: {value!r}")
    if value is None:
        return False
    if isinstance(value, (bool, int, float)):
        return bool(value)
    raise ValueError(f"not a true/false switch: {value!r}")
