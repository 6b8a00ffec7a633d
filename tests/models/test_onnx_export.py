import numpy as np
import pytest
import torch

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from maan.models import build_model, export_onnx, onnx_output_names  # noqa: E402

SMALL = dict(width=4, depth=1)


def run_both(model, path, batch, with_details):
    torch.manual_seed(batch)
    x_ecg, x_eeg = torch.randn(batch, *model.ecg_shape), torch.randn(batch, *model.eeg_shape)
    # the modality mask is an input: complete windows and windows without ECG or without EEG
    mask = torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]]).repeat(batch, 1)[:batch]
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["ecg", "eeg", "mask"]
    onnx_outputs = session.run(None, {"ecg": x_ecg.numpy(), "eeg": x_eeg.numpy(), "mask": mask.numpy()})
    with torch.no_grad():
        details = model.forward_with_details(x_ecg, x_eeg, mask)
    names = onnx_output_names(model, with_details)
    assert [o.name for o in session.get_outputs()] == names
    return [(getattr(details, name).numpy(), got) for name, got in zip(names, onnx_outputs)]


@pytest.mark.parametrize("name,with_details", [("maan", True), ("base", False)])
def test_onnxruntime_matches_pytorch(tmp_path, name, with_details):
    torch.manual_seed(0)
    model = build_model(name, (1, 32), (4, 14, 10), **SMALL)
    # Non-trivial batch-norm statistics, so that eval mode differs from initialisation.
    with torch.no_grad():
        model(torch.randn(16, 1, 32) * 2 + 1, torch.randn(16, 4, 14, 10) * 3 - 1)
    model.eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx", (1, 32), (4, 14, 10),
                       with_details=with_details)
    assert not model.training
    for batch in (1, 4):  # the batch dimension is dynamic
        for expected, got in run_both(model, path, batch, with_details):
            assert got.shape == expected.shape
            np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_export_rejects_a_shape_the_model_was_not_built_for(tmp_path):
    model = build_model("base", **SMALL)
    with pytest.raises(ValueError, match="rebuild the model"):
        export_onnx(model, tmp_path / "m.onnx", eeg_shape=(4, 19, 10))
