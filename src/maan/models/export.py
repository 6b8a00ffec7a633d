"""ONNX export of the models, with the batch dimension left dynamic.

The graph's inputs are named after the model's modalities ("ecg", "eeg"), so a
single-modality model has a single input; a two-modality model also takes "mask" (batch, 2),
float 1/0 for a valid/missing ECG and EEG of each window (ones: complete windows). The outputs
are "logits" and, with ``with_details=True``, "representation" and (attention model only)
"a_ecg", "a_eeg".
"""
from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from maan.models.maan import MAAN

# Batch size of the example input: not 1, so the exporter cannot specialise the batch
# dimension to a constant.
_EXAMPLE_BATCH = 2
# Logs one warning per missing torchvision operator on every first export; irrelevant here.
_NOISY_EXPORTER_LOGGER = "torch.onnx._internal.exporter._registration"


class _OnnxWrapper(nn.Module):
    """Takes only the inputs the model uses and returns a tuple of tensors."""

    def __init__(self, model: MAAN, with_details: bool):
        super().__init__()
        self.model = model
        self.with_details = with_details

    def forward(self, *inputs: torch.Tensor):
        by_modality = dict(zip(self.model.modalities, inputs))
        mask = inputs[len(self.model.modalities)] if self.model.mask_inputs else None
        out = self.model.forward_with_details(by_modality.get("ecg"), by_modality.get("eeg"), mask)
        if not self.with_details:
            return out.logits
        outputs = (out.logits, out.representation)
        if out.a_ecg is not None:
            outputs += (out.a_ecg, out.a_eeg)
        return outputs


def onnx_output_names(model: MAAN, with_details: bool = False) -> list[str]:
    """Names of the exported graph's outputs, in order."""
    if not with_details:
        return ["logits"]
    names = ["logits", "representation"]
    if model.fusion_attention is not None:
        names += ["a_ecg", "a_eeg"]
    return names


def export_onnx(model: MAAN, path: str | os.PathLike, ecg_shape: Sequence[int] | None = None,
                eeg_shape: Sequence[int] | None = None, *, with_details: bool = False,
                opset_version: int | None = None) -> Path:
    """Export ``model`` (in eval mode) to an ONNX file at ``path`` and return the path.

    ``ecg_shape`` / ``eeg_shape`` are the per-window input shapes; they default to the
    ones the model was built for and must equal them when given (the U-Nets are built for
    fixed window sizes; only the batch size is dynamic). The model's train/eval mode is
    restored afterwards.
    """
    if not isinstance(model, MAAN):
        raise TypeError(f"export_onnx expects a maan.models.MAAN, got {type(model).__name__}")
    example_inputs, input_names = [], []
    for modality, given, built in (("ecg", ecg_shape, model.ecg_shape),
                                   ("eeg", eeg_shape, model.eeg_shape)):
        if modality not in model.modalities:
            continue
        if given is not None and tuple(int(s) for s in given) != built:
            raise ValueError(
                f"{modality}_shape {tuple(given)} differs from the shape the model was built "
                f"for, {built}; rebuild the model for that shape"
            )
        example_inputs.append(torch.randn(_EXAMPLE_BATCH, *built))
        input_names.append(modality)
    if model.mask_inputs:
        example_inputs.append(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
        input_names.append("mask")
    output_names = onnx_output_names(model, with_details)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    wrapper = _OnnxWrapper(model, with_details).eval()
    noisy_logger = logging.getLogger(_NOISY_EXPORTER_LOGGER)
    noisy_level = noisy_logger.level
    try:
        noisy_logger.setLevel(logging.ERROR)
        batch = torch.export.Dim("batch", min=1)
        with warnings.catch_warnings():
            # The exporter's own deprecation/advice warnings are not the caller's concern.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper, tuple(example_inputs), str(path),
                input_names=input_names, output_names=output_names,
                dynamic_shapes=(tuple({0: batch} for _ in example_inputs),),  # one *inputs arg
                opset_version=opset_version, dynamo=True, external_data=False,
                verbose=False,
            )
    finally:
        noisy_logger.setLevel(noisy_level)
        model.train(was_training)
    return path
