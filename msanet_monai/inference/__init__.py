"""Whole-body inference: per view, load -> scale counts -> thorax crop -> MSA-Net -> paste back -> outputs.

The network runs on the runtime chosen by ``inference_runtime`` (:mod:`msanet_monai.inference.runtime`),
both views of a study in one batch; loading and preprocessing run in a background thread
(``ThreadDataLoader``) and so does writing; :mod:`msanet_monai.inference.timing` logs where the time went.

The pipeline is the bundle's ``configs/inference.json``: a :class:`FailSafeDataset` of one item per
view (:func:`list_inference_items`), MONAI transforms for preprocessing, :class:`BoneScanInferenceEvaluator`
(MONAI's ``SupervisedEvaluator`` going on past a bad view), ``Invertd`` to paste the thorax mask back
into the whole body, and :class:`WholeBodyOutputWriter` writing the NIfTI mask, overlay PNG, DICOM SEG
and the CSV summary.
"""

from msanet_monai.inference.evaluator import BoneScanInferenceEvaluator
from msanet_monai.inference.inputs import (
    ERROR_KEY,
    INPUT_SUFFIXES,
    FailSafeDataset,
    StudyBatchSampler,
    collate_views,
    datalist_test_images,
    describe_error,
    find_inputs,
    list_inference_items,
)
from msanet_monai.inference.runtime import EXACT_RUNTIMES, RUNTIMES, InferenceRuntime, fold_conv_bn, weights_digest
from msanet_monai.inference.timing import InferenceTiming
from msanet_monai.inference.writer import WholeBodyOutputWriter, file_stem, output_base, run_id

__all__ = [
    "ERROR_KEY",
    "EXACT_RUNTIMES",
    "RUNTIMES",
    "InferenceRuntime",
    "InferenceTiming",
    "StudyBatchSampler",
    "collate_views",
    "datalist_test_images",
    "fold_conv_bn",
    "weights_digest",
    "INPUT_SUFFIXES",
    "BoneScanInferenceEvaluator",
    "FailSafeDataset",
    "WholeBodyOutputWriter",
    "describe_error",
    "file_stem",
    "find_inputs",
    "list_inference_items",
    "output_base",
    "run_id",
]
