"""Inference inputs: one item per view, and a dataset that turns a bad input into an error item.

A dual-head NM DICOM file holds two views (anterior and posterior) and gives two items; every other
input (single-view DICOM NM or Secondary Capture, NIfTI, 16-bit PNG) gives one. A file whose views
cannot even be listed (corrupt, not a bone scan) still gives one item: the dataset then fails to load
it and reports it as an error item, so the batch goes on and the CSV says what was wrong.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monai.data import Dataset
from monai.transforms import Compose

from msanet_monai.errors import BoneScanError

__all__ = [
    "ERROR_KEY",
    "INPUT_SUFFIXES",
    "datalist_test_images",
    "find_inputs",
    "list_inference_items",
    "FailSafeDataset",
    "StudyBatchSampler",
    "collate_views",
    "describe_error",
]

logger = logging.getLogger(__name__)

#: key of an item (and of an engine output) holding the error message of a view that failed
ERROR_KEY = "error"
#: file endings taken from an input folder; files without a suffix are taken too (DICOM files often have none)
INPUT_SUFFIXES = (".dcm", ".dicom", ".ima", ".nii", ".nii.gz", ".png")


def _has_input_suffix(path: Path) -> bool:
    name = path.name.lower()
    return "." not in name or any(name.endswith(s) for s in INPUT_SUFFIXES)


def find_inputs(
    input_files: Sequence[str | os.PathLike] | str | None = None, input_dir: str | os.PathLike | None = None
) -> list[str]:
    """Absolute paths of the input files: ``input_files`` as given, then ``input_dir``'s files, sorted.

    Args:
        input_files: files to run (a single path is accepted too); kept even if missing, so that a
            wrong path shows up as an error row rather than silently disappearing.
        input_dir: folder whose files ending in :data:`INPUT_SUFFIXES` (or with no suffix) are run,
            not recursing; hidden files are skipped.

    Raises:
        BoneScanError: ``input_dir`` is not a folder, or there is no input at all.
    """
    files: list[str] = []
    if input_files:
        if isinstance(input_files, (str, os.PathLike)):
            input_files = [input_files]
        files.extend(os.path.abspath(os.fspath(f)) for f in input_files)
    if input_dir:
        folder = Path(input_dir)
        if not folder.is_dir():
            raise BoneScanError(folder, "input_dir is not a folder")
        # every entry but folders: a broken link or a link loop is kept, so that it gets an error row
        # instead of vanishing (Path.is_file() is False for both); paths are kept as listed, unresolved
        skipped = []
        for p in sorted(folder.iterdir()):
            if p.name.startswith("."):
                continue
            if _has_input_suffix(p) and (p.is_symlink() or not p.is_dir()):
                files.append(os.path.abspath(p))
            else:
                skipped.append(p.name + ("/" if p.is_dir() else ""))
        if skipped:  # said once, so that a study left in a sub-folder is not missed without a word
            logger.info("%s: %d entr%s skipped (sub-folders are not searched; not a scan suffix): %s%s", folder,
                        len(skipped), "y" if len(skipped) == 1 else "ies", ", ".join(skipped[:10]),
                        " ..." if len(skipped) > 10 else "")
    if not files:
        raise BoneScanError(input_dir, "no input files (set input_files or input_dir)")
    return list(dict.fromkeys(files))  # drop repeats, keep order


def datalist_test_images(datalist: str | os.PathLike) -> list[str]:
    """The default input of ``run inference`` without ``--input_dir`` / ``--input_files``: the images of
    the datalist's ``test`` section, sorted and without repeats (two views of one file are one input).

    Raises:
        BoneScanError: the datalist does not exist, with what makes it and how to give inputs instead.
    """
    from msanet_monai.datalist import load_datalist

    if not os.path.isfile(datalist):
        raise BoneScanError(datalist, "datalist file not found: it is the default input when neither --input_dir nor "
                            "--input_files is given; training on the built-in data writes it (or python -m "
                            "msanet_monai.synthetic --out DIR); to segment your own studies pass --input_dir DIR")
    return sorted({item["image"] for item in load_datalist(datalist, "test")})


def list_inference_items(
    input_files: Sequence[str | os.PathLike] | str | None = None, input_dir: str | os.PathLike | None = None
) -> list[dict[str, Any]]:
    """One ``{"image": path, "view": view}`` item per view of every input (see :func:`find_inputs`).

    Views come from ``msanet_monai.io.list_views``; a file it cannot read gives one item without a
    view, which fails (and is reported) when the dataset loads it.
    """
    from msanet_monai.io import list_views  # owner A's reader; imported here so this module loads without it

    items: list[dict[str, Any]] = []
    for path in find_inputs(input_files, input_dir):
        try:
            views = list(list_views(path))
        except Exception as e:  # noqa: BLE001  (reported by the dataset when the file is loaded)
            logger.debug("cannot list the views of %s: %s", path, e)
            views = []
        if views:
            items.extend({"image": path, "view": view} for view in views)
        else:
            items.append({"image": path})
    return items


def describe_error(error: BaseException, path: str | None = None) -> str:
    """A one-line message for a failed view that names the file.

    MONAI's ``Compose`` wraps a transform's exception in a ``RuntimeError``; the first
    :class:`~msanet_monai.errors.BoneScanError` in the chain (outermost first) is the project's own
    message, naming the file; the library's exception it was raised from is not what a user needs.
    Without one, the root cause is reported with its type and the file's name.
    """
    chain = [error]
    while chain[-1].__cause__ is not None and len(chain) < 50:
        chain.append(chain[-1].__cause__)
    own = next((e for e in chain if isinstance(e, BoneScanError)), None)
    root = own if own is not None else chain[-1]
    text = str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__
    if own is not None or (path and path in text):
        return text
    return f"{path}: {type(root).__name__}: {text}" if path else f"{type(root).__name__}: {text}"


class FailSafeDataset(Dataset):
    """MONAI ``Dataset`` whose items never raise: a view that fails to load becomes an error item.

    An error item is ``{"image": path, "view": view, "error": message}`` (message naming the file);
    :class:`~msanet_monai.inference.BoneScanInferenceEvaluator` skips the network for it and the
    output writer records it as a CSV row with status ``error``.

    Args:
        data, transform: as MONAI's ``Dataset``.
        timing: an :class:`~msanet_monai.inference.timing.InferenceTiming` to which the time of the
            first transform (the loader: "reading") and of the others ("preprocessing") is added.
    """

    def __init__(self, data: Sequence, transform: Any = None, timing: Any = None) -> None:
        super().__init__(data, transform)
        self.timing = timing
        self._split: tuple[Compose, Compose] | None = None

    def _timed_transform(self, index: int) -> Any:
        t = self.transform
        if self._split is None:
            # the same transform objects in two parts, so that Invertd(transform=<the whole Compose>)
            # still finds the operations it recorded
            kw = dict(map_items=t.map_items, unpack_items=t.unpack_items, lazy=t.lazy, overrides=t.overrides)
            self._split = (Compose(t.transforms[:1], **kw), Compose(t.transforms[1:], **kw))
        with self.timing.phase("reading"):
            item = self._split[0](dict(self.data[index]))
        with self.timing.phase("preprocessing"):
            return self._split[1](item)

    def _transform(self, index: int) -> Any:
        try:
            if self.timing is not None and isinstance(self.transform, Compose) and not self.transform.lazy:
                return self._timed_transform(index)
            return super()._transform(index)
        except Exception as e:  # noqa: BLE001  (any failure of one input must not stop the batch)
            item = self.data[index]
            path = str(item.get("image"))
            message = describe_error(e, path)
            logger.warning("skipping %s (%s): %s", path, item.get("view", "default view"), message)
            return {"image": path, "view": str(item.get("view") or ""), ERROR_KEY: message}


class StudyBatchSampler:
    """Batches of item indices, one batch per study: the views of one file (consecutive items of
    :func:`list_inference_items`) go through the network together, at most ``max_views`` at a time.

    Use with ``collate_fn=collate_views``: the evaluator collates the loaded views itself, so that an
    error item or two views of different sizes do not break the batch.
    """

    def __init__(self, data: Sequence[dict[str, Any]], max_views: int = 2) -> None:
        self.batches: list[list[int]] = []
        for index, item in enumerate(data):
            last = self.batches[-1] if self.batches else None
            if last and len(last) < max(1, int(max_views)) and data[last[0]].get("image") == item.get("image"):
                last.append(index)
            else:
                self.batches.append([index])

    def __iter__(self):
        return iter([list(b) for b in self.batches])

    def __len__(self) -> int:
        return len(self.batches)


def collate_views(items: Sequence[Any]) -> list[Any]:
    """The loaded views of a study as a plain list (see :class:`StudyBatchSampler`)."""
    return list(items)
