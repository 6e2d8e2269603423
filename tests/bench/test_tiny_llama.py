import json
import os
import shutil

from ewsjf.bench.tiny_llama import TINY_LLAMA_CONFIG, shared_tiny_llama, write_tiny_llama


def test_write_tiny_llama_writes_the_config_with_overrides(tmp_path):
    d = write_tiny_llama(str(tmp_path / "m"), max_position_embeddings=4096)
    with open(os.path.join(d, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    assert cfg["max_position_embeddings"] == 4096
    assert {k: v for k, v in cfg.items() if k != "max_position_embeddings"} == {
        k: v for k, v in TINY_LLAMA_CONFIG.items() if k != "max_position_embeddings"}
    assert os.listdir(d) == ["config.json"]   # no weights, no tokenizer: nothing to download or load


def test_shared_tiny_llama_is_one_folder_per_size_and_comes_back_if_removed():
    a = shared_tiny_llama(3000)
    assert shared_tiny_llama(3000) == a
    assert shared_tiny_llama(3001) != a
    shutil.rmtree(a)
    b = shared_tiny_llama(3000)
    assert os.path.isfile(os.path.join(b, "config.json"))
