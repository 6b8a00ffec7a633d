"""Modality-aware attention network (paper 2) and its ablations, in PyTorch.

``build_model("maan" | "base" | "ecg-only" | "eeg-only", ecg_shape, eeg_shape, **kw)`` is
the entry point; ``export_onnx(model, path)`` writes an ONNX file (batch size dynamic).
"""
from maan.models.blocks import (
    AttentionGate,
    ChannelSqueezeExcitation,
    ConcurrentSqueezeExcitation,
    ConvBlock,
    ConvUnit,
    SpatialSqueezeExcitation,
)
from maan.models.maan import (
    DEFAULT_DEPTH,
    DEFAULT_ECG_SHAPE,
    DEFAULT_EEG_SHAPE,
    DEFAULT_WIDTH,
    MAAN,
    MODEL_NAMES,
    BaseModel,
    ModalityAwareAttention,
    ModelOutput,
    build_model,
    has_input,
    model_modalities,
)
from maan.models.export import export_onnx, onnx_output_names
from maan.models.unet import InputTooSmallError, UNet, minimum_input_size


__all__ = [
    "AttentionGate", "BaseModel", "ChannelSqueezeExcitation", "ConcurrentSqueezeExcitation",
    "ConvBlock", "ConvUnit", "DEFAULT_DEPTH", "DEFAULT_ECG_SHAPE", "DEFAULT_EEG_SHAPE",
    "DEFAULT_WIDTH",
    "InputTooSmallError", "MAAN", "MODEL_NAMES", "ModalityAwareAttention",
    "ModelOutput", "SpatialSqueezeExcitation", "UNet", "build_model", "export_onnx", "has_input", "model_modalities",
    "minimum_input_size", "onnx_output_names",
]
