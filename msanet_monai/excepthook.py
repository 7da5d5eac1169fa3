"""End a failed bundle run with the project's one-line message instead of a chained traceback.

``python -m monai.bundle run ...`` evaluates config expressions inside MONAI's config machinery, so an
error raised by a component (a datalist that is missing, a checkpoint of other widths, a bad config
value) reaches the console wrapped in several ``RuntimeError: Failed to evaluate ...`` /
``Failed to instantiate component`` layers. :func:`install_excepthook`, called from a config's
``initialize``, replaces ``sys.excepthook`` so that when such a chain holds one of
:data:`~msanet_monai.errors.PROJECT_ERRORS`, the traceback goes to the ``msanet_monai`` logger at
DEBUG level and stderr gets one line, ``<ErrorType>: <file or config id>: <problem>``. Other errors
keep Python's traceback; ``MSANET_MONAI_TRACEBACK=1`` keeps it for all.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from types import TracebackType

from msanet_monai.errors import PROJECT_ERRORS

__all__ = ["project_error", "install_excepthook"]

logger = logging.getLogger("msanet_monai")


def project_error(error: BaseException | None) -> BaseException | None:
    """The outermost project error in ``error``'s chain of causes and contexts, else ``None``."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, PROJECT_ERRORS):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    cause = project_error(error)
    if cause is None or os.environ.get("MSANET_MONAI_TRACEBACK", "").strip() not in ("", "0"):
        sys.__excepthook__(kind, error, tb)
        return
    logger.debug("".join(traceback.format_exception(kind, error, tb)))
    print(f"{type(cause).__name__}: {cause}", file=sys.stderr, flush=True)


def install_excepthook() -> bool:
    """Install the one-line hook (idempotent); returns ``True`` so configs can list it as an expression."""
    sys.excepthook = _hook
    return True
