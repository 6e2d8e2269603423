"""The preemption guard in vLLM's real scheduler (VLLMOptions.preemption_guard, on by default): off, vLLM's watermark
is untouched; on, a preemption sets the next steps' KV watermark, which decays away, never below the user's own
--watermark; fewer preemptions, every request finished once; operators see it in stats and /metrics."""

import pytest

from ewsjf.bench.virtual_vllm import VirtualVLLM
from ewsjf.integrations.vllm.config import VLLMOptions
from ewsjf.integrations.vllm.series import samples

both = pytest.mark.parametrize("asy", [False, True], ids=["sync", "async"])


def _storm(guard: bool, asy: bool = False, watermark: float = 0.0, n: int = 40) -> tuple[VirtualVLLM, list[int]]:
    """n requests of 200-token prompts and 300-token outputs on 120 blocks: the running batch outgrows the cache.
    Returns the harness and vLLM's watermark (in blocks) at each step."""
    v = VirtualVLLM("ewsjf", num_blocks=120, max_num_seqs=16, max_num_batched_tokens=1024, async_scheduling=asy,
                    enable_prefix_caching=False, watermark=watermark,
                    scheduler_kwargs={"ewsjf_options": {"preemption_guard": guard}})
    for i in range(n):
        v.add_request(f"r{i}", prompt_tokens=200, output_tokens=300)
    marks = []
    for _ in range(20_000):   # bounded: the run takes ~1,000 steps
        if not v.has_unfinished():
            break
        v.step()
        marks.append(v.scheduler.kv_cache_manager.watermark_blocks)
    assert not v.has_unfinished()
    return v, marks


@both
def test_fewer_preemptions_and_every_request_finished_once(asy):
    off, off_marks = _storm(False, asy)
    on, on_marks = _storm(True, asy)
    assert set(off_marks) == {0}                       # off: vLLM's watermark as the user left it
    assert max(on_marks) > 0 and on_marks[-1] < max(on_marks)   # learned, then decaying
    assert off.preemptions > 0 and on.preemptions < off.preemptions
    for v in (off, on):
        assert sorted(v.finish_time) == sorted(f"r{i}" for i in range(40))
        assert all(v.output_tokens[r] == 300 for r in v.finish_time)   # none lost, none delivered twice


def test_the_users_watermark_stays_the_floor():
    v, marks = _storm(True, watermark=0.1)
    floor = int(0.1 * 120)
    assert min(marks) == floor and max(marks) > floor


def test_operators_see_the_guard_in_stats_and_metrics():
    v, _ = _storm(True)
    stats = v.scheduler.ewsjf_stats()
    guard = stats["preemption_guard"]
    assert guard["preemptions"] > 0 and guard["lifetime_steps"] == pytest.approx(300, abs=2)
    names = {name for name, _, _ in samples(stats)}
    assert "vllm:ewsjf_preemption_guard_watermark_blocks" in names
    off, _ = _storm(False, n=4)
    assert "preemption_guard" not in off.scheduler.ewsjf_stats()


def test_the_option_is_validated():
    assert VLLMOptions().preemption_guard is True   # on by default (DEFAULT_PREEMPTION_GUARD)
    with pytest.raises(ValueError, match="preemption_guard"):
        VLLMOptions(preemption_guard="yes")
