"""The numpy-written test models are real ``transformers`` checkpoints (where it is installed)."""

from __future__ import annotations

import numpy as np
import pytest

from model_factory import ALL_ARCHS, bfloat16_bits, make_model, tiny_state_dict, write_model


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_transformers_loads_the_numpy_checkpoint_exactly(tmp_path, arch: str) -> None:
    if arch == "hf_olmo":
        pytest.skip("OLMo-1's original format is AllenAI's custom code (hf_olmo), not a transformers class")
    torch = pytest.importorskip("torch", reason="transformers modules need torch")
    pytest.importorskip("transformers", reason="compares with transformers' own model classes")
    import transformers as tf

    folder = write_model(arch, tmp_path / arch)
    cls = tf.BertModel if arch == "bert" else tf.AutoModelForCausalLM
    model, info = cls.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"]
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    # saved again by transformers: the same names, shapes and bytes as the numpy-written file
    model.save_pretrained(tmp_path / "again")
    from neuromfa_native.io.safetensors import SafetensorsFile

    again = SafetensorsFile(tmp_path / "again" / "model.safetensors")
    ours = tiny_state_dict(arch)
    assert sorted(ours) == sorted(again.tensor_names())
    for name, w in ours.items():
        np.testing.assert_array_equal(again.get(name), w)
    del torch


def test_make_model_holds_the_folder_weights() -> None:
    torch = pytest.importorskip("torch", reason="make_model builds a torch module")
    pytest.importorskip("transformers", reason="make_model builds a transformers module")
    model = make_model("llama", dtype="bfloat16")
    name = "model.layers.1.self_attn.k_proj.weight"
    got = model.state_dict()[name].view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(got, bfloat16_bits(tiny_state_dict("llama")[name]))


def test_bfloat16_rounding_is_to_nearest_even() -> None:
    x = np.array([1.0, 1.0 + 2**-8, 1.0 + 3 * 2**-8, -2.5, 1.0 + 2**-9], np.float32)
    # 1 + 2^-8 is a tie between 1 and 1 + 2^-7: to the even mantissa (1.0); 1 + 3*2^-8 up
    assert bfloat16_bits(x).tolist() == [0x3F80, 0x3F80, 0x3F82, 0xC020, 0x3F80]
