"""Config and model files of `ewsjf bench`, and its output paths: checked before any replay."""

from __future__ import annotations

import json

import pytest

from ewsjf.bench import inputs

LLAMA = {"num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096, "num_hidden_layers": 32,
         "intermediate_size": 14336, "vocab_size": 128256, "model_type": "llama"}


def test_hf_config_file_or_folder(tmp_path):
    d = tmp_path / "my-model"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(LLAMA))
    for where in (d, d / "config.json"):
        m = inputs.step_model(str(where), "a100-80gb").model
        assert m.name == "my-model" and m.heads == 32 and m.head_dim == 128


@pytest.mark.parametrize("change, match", [
    ({"num_attention_heads": 0}, "heads must be an integer >= 1, got 0"),
    ({"num_hidden_layers": -1}, "layers must be an integer >= 1"),
    ({"vocab_size": None}, "missing 'vocab_size'"),
])
def test_bad_hf_configs_name_the_file(tmp_path, change, match):
    p = tmp_path / "config.json"
    p.write_text(json.dumps({**LLAMA, **change}))
    with pytest.raises(ValueError, match=f"--model {p}: .*{match}"):
        inputs.step_model(str(p), "a100-80gb")


def test_oversized_and_unparsable_config_files(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("x: 1\n" * (inputs.MAX_CONFIG_BYTES // 4))
    with pytest.raises(ValueError, match="--ewsjf-config: .*big.yaml: .* bytes, larger than"):
        inputs.ewsjf_config(str(big), [])
    with pytest.raises(ValueError, match="--model: .*big.yaml: .* bytes"):
        inputs.step_model(str(big), "a100-80gb")
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_wait: 1\nb_f: [\n")
    with pytest.raises(ValueError, match=r"--ewsjf-config .*bad.yaml:3: ") as e:
        inputs.ewsjf_config(str(bad), [])
    assert "\n" not in str(e.value)


def test_overrides():
    assert inputs.ewsjf_config(None, []) is None
    assert inputs.ewsjf_config(None, ["max_wait=inf"]).max_wait == float("inf")
    for bad, match in (("max_wait", "NAME=VALUE"), ("=1", "NAME=VALUE"), ("max_wait=[1", "cannot parse"),
                       ("no_such=1", "no_such")):
        with pytest.raises(ValueError, match=match):
            inputs.ewsjf_config(None, [bad])


def test_output_paths_fail_before_the_replay(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ValueError, match="--out .*file: cannot create the folder"):
        inputs.output_paths(str(f), None, None, None)
    with pytest.raises(ValueError, match="--json .*: is a folder"):
        inputs.output_paths(None, str(tmp_path), None, None)
    with pytest.raises(ValueError, match="--markdown .*: cannot create the folder"):
        inputs.output_paths(None, None, str(f / "r.md"), None)
    inputs.output_paths(str(tmp_path / "new" / "out"), str(tmp_path / "j" / "r.json"), None, None)
    assert (tmp_path / "new" / "out").is_dir() and (tmp_path / "j").is_dir()


def test_output_paths_that_fail_part_way_leave_no_folder_behind(tmp_path):
    """--out made, then --markdown's folder cannot be: the --out chain made for this call goes again, and a folder
    that was there before stays."""
    f = tmp_path / "file"
    f.write_text("")
    (tmp_path / "old").mkdir()
    with pytest.raises(ValueError, match="--markdown"):
        inputs.output_paths(str(tmp_path / "old" / "new" / "out"), None, str(f / "r.md"), None)
    assert (tmp_path / "old").is_dir() and not (tmp_path / "old" / "new").exists()
    made = inputs.output_paths(str(tmp_path / "old" / "a" / "b"), str(tmp_path / "c" / "r.json"), None, None)
    assert made == [str(tmp_path / "old" / "a"), str(tmp_path / "c")]
    (tmp_path / "c" / "r.json").write_text("{}")   # a run that wrote something keeps it
    inputs.remove_made_folders(made)
    assert not (tmp_path / "old" / "a").exists() and (tmp_path / "c" / "r.json").is_file()
