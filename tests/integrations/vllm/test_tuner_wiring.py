"""The Bayesian tuner enabled through the vLLM integration's configuration (issue 5), on vLLM's real
scheduler: settings sources and errors, the tuned queue in place, token feedback, metrics, shutdown."""

import numpy as np
import pytest

from ewsjf.integrations.vllm.config import EWSJFConfigError, load_settings
from ewsjf.integrations.vllm.series import samples
from ewsjf.bench.virtual_vllm import Arrival, VirtualVLLM


def test_tuner_settings_sources_and_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("EWSJF_CONFIG", raising=False)
    assert load_settings().tuner is None
    path = tmp_path / "ewsjf.yaml"
    path.write_text("max_wait: 30\ntuner:\n  mode: live\n  seed: 3\n")
    monkeypatch.setenv("EWSJF_CONFIG", str(path))
    s = load_settings()
    assert (s.tuner.mode, s.tuner.seed, s.config.max_wait) == ("live", 3, 30.0)
    merged = load_settings({"ewsjf": {"tuner": {"seed": 5}}}).tuner
    assert (merged.mode, merged.seed) == ("live", 5)  # key by key across sources
    assert load_settings({"ewsjf": {"tuner": False}}).tuner is None
    with pytest.raises(EWSJFConfigError, match="no_such"):
        load_settings(None, {"tuner": {"no_such": 1}})
    with pytest.raises(EWSJFConfigError, match="TunerSettings.mode"):
        load_settings(None, {"tuner": {"mode": "bogus"}})
    with pytest.raises(EWSJFConfigError, match="'tuner' must be true, false or a mapping"):
        load_settings(None, {"tuner": 3})


def test_tuner_runs_in_the_vllm_scheduler_with_token_feedback(monkeypatch):
    monkeypatch.delenv("EWSJF_CONFIG", raising=False)
    v = VirtualVLLM(scheduler="ewsjf", num_blocks=2048, max_num_seqs=16,
                    scheduler_kwargs={"ewsjf_config": {"tuner": {"executor": "thread", "retune_every_s": 1e9,
                                                                 "min_window_requests": 10_000}}})
    sched = v.scheduler
    queue = sched.ewsjf_queue
    assert type(queue).__name__ == "TunedEWSJFQueue" and queue.tuner.running
    rng = np.random.default_rng(0)
    arrivals = [Arrival(f"r{i}", 0.01 * i, int(rng.integers(8, 600)), int(rng.integers(1, 6))) for i in range(60)]
    v.run(arrivals)
    snap = queue.recorder.snapshot()
    want = {a.request_id: a.output_tokens for a in arrivals}
    assert len(snap) == 60 and np.isfinite(snap.first_token_s).all() and np.isfinite(snap.finish_s).all()
    assert sorted(snap.output_tokens.tolist()) == sorted(want.values())
    assert (snap.first_token_s <= snap.finish_s).all() and not sched._ewsjf_out_tokens
    names = {name for name, _, _ in samples(sched.ewsjf_stats())}
    assert {"vllm:ewsjf_tuner_trials", "vllm:ewsjf_tuner_applied", "vllm:ewsjf_param"} <= names
    sched.shutdown()
    assert not queue.tuner.running


def test_the_tuner_replays_on_the_engine_it_tunes(monkeypatch):
    """Replay trials simulate vLLM's own settings (budget, running cap, KV blocks, the head share), so a trial
    sees the KV pressure the live engine has; a key set in the tuner's `engine` mapping wins."""
    monkeypatch.delenv("EWSJF_CONFIG", raising=False)
    tuner = {"executor": "thread", "retune_every_s": 1e9, "min_window_requests": 10_000}
    v = VirtualVLLM(scheduler="ewsjf", num_blocks=1024, block_size=16, max_num_seqs=16,
                    max_num_batched_tokens=2048, scheduler_kwargs={"ewsjf_config": {"tuner": tuner}})
    engine = v.scheduler.ewsjf_queue.tuner_settings.engine
    assert {k: engine[k] for k in ("token_budget", "max_running", "kv_blocks", "block_size", "waiting_head_share")} \
        == {"token_budget": 2048, "max_running": 16, "kv_blocks": 1024, "block_size": 16, "waiting_head_share": 0.25}
    assert engine["prefix_caching"] is True and engine["max_model_len"] == v.scheduler.max_model_len
    v.scheduler.shutdown()
    mine = VirtualVLLM(scheduler="ewsjf", num_blocks=1024, max_num_seqs=16, scheduler_kwargs={"ewsjf_config": {
        "tuner": {**tuner, "engine": {"kv_blocks": 4000}},
        "vllm": {"waiting_head_share": 0, "preemption_guard": False}}})
    engine = mine.scheduler.ewsjf_queue.tuner_settings.engine
    assert (engine["kv_blocks"], engine["waiting_head_share"], engine["max_running"]) == (4000, 0.0, 16)
    assert engine["kv_watermark"] == 0.0 and engine["preemption_guard"] is False   # the adapter's options, as set
    mine.scheduler.shutdown()
    guarded = VirtualVLLM(scheduler="ewsjf", num_blocks=1024,   # the preemption guard, on by default: the trials
                          scheduler_kwargs={"ewsjf_config": {"tuner": tuner}})   # have it too
    assert guarded.scheduler.ewsjf_queue.tuner_settings.engine["preemption_guard"] is True
    guarded.scheduler.shutdown()
    marked = VirtualVLLM(scheduler="ewsjf", num_blocks=1024, watermark=0.01,   # vLLM's --watermark: the trials
                         scheduler_kwargs={"ewsjf_config": {"tuner": tuner}})      # keep it
    assert marked.scheduler.ewsjf_queue.tuner_settings.engine["kv_watermark"] == 0.01
    marked.scheduler.shutdown()
    with pytest.raises(EWSJFConfigError, match="token_budgte"):
        load_settings(None, {"tuner": {"engine": {"token_budgte": 4096}}})


def test_an_engine_the_replay_cannot_model_leaves_the_tuner_on_its_own_engine_settings(monkeypatch, caplog):
    """If vLLM's settings do not fit the simulator, the scheduler still starts and the trials replay on the
    tuner's own `engine` mapping (a warning says so): serving never fails for the tuner's sake."""
    import ewsjf.integrations.vllm.scheduler as sched_mod
    monkeypatch.delenv("EWSJF_CONFIG", raising=False)
    monkeypatch.setattr(sched_mod, "replay_engine", lambda scheduler, options: {"max_model_len": 1})
    tuner = {"executor": "thread", "retune_every_s": 1e9, "min_window_requests": 10_000,
             "engine": {"kv_blocks": 777}}
    with caplog.at_level("WARNING", logger="vllm.ewsjf"):
        v = VirtualVLLM(scheduler="ewsjf", num_blocks=1024, max_num_seqs=16,
                        scheduler_kwargs={"ewsjf_config": {"tuner": tuner}})
    assert v.scheduler.ewsjf_queue.tuner_settings.engine == {"kv_blocks": 777}
    assert "replays cannot mirror this engine" in caplog.text and "max_model_len" in caplog.text
    v.scheduler.shutdown()


def _recording_vllm(monkeypatch, max_num_seqs: int) -> VirtualVLLM:
    """vLLM's scheduler with EWSJF and a tuner that records every request but never runs a trial."""
    monkeypatch.delenv("EWSJF_CONFIG", raising=False)
    tuner = {"executor": "thread", "retune_every_s": 1e9, "min_window_requests": 10_000}
    return VirtualVLLM(scheduler="ewsjf", num_blocks=2048, max_num_seqs=max_num_seqs,
                       scheduler_kwargs={"ewsjf_config": {"tuner": tuner}})


def test_aborted_requests_leave_the_tuners_backlog(monkeypatch):
    """A request aborted while waiting or running gets no finish output; the scheduler still tells the tuner's
    recorder it left (at the abort), or every later replay window would count it as backlog (re-arriving at the
    window's start) until 20,000 arrivals evicted it. One aborted before any token gets no first-token time."""
    v = _recording_vllm(monkeypatch, max_num_seqs=1)
    v.add_request("running", prompt_tokens=32, output_tokens=50)
    v.add_request("waiting", prompt_tokens=32, output_tokens=5)
    for _ in range(3):
        v.step()
    assert v.running_ids() == ["running"] and v.waiting_ids() == ["waiting"]
    aborted_at = v.now
    assert sorted(v.abort(["running", "waiting"])) == ["running", "waiting"]   # vLLM returns them in any order
    v.advance_to(v.now + 100.0)
    v.add_request("later", prompt_tokens=8, output_tokens=2)
    while v.has_unfinished():
        v.step()
    recorder = v.scheduler.ewsjf_queue.recorder
    window = recorder.snapshot(v.now - 10.0, v.now, active_at_start=True)
    assert len(window) == 1   # "later" alone: no aborted backlog
    everything = recorder.snapshot()
    assert everything.finish_s[:2].tolist() == [aborted_at, aborted_at]
    assert everything.output_tokens[:2].tolist() == [v.output_tokens["running"], 0]
    assert np.isfinite(everything.first_token_s[0]) and np.isnan(everything.first_token_s[1])
    v.scheduler.shutdown()


def test_a_request_that_errors_after_output_keeps_its_tokens_in_the_tuners_window(monkeypatch):
    """vLLM errors a request inside update_from_output (a multimodal encoder-cache mismatch, a grammar or KV
    load failure): finish_requests(FINISHED_ERROR), then a finish output with no tokens. The recorder must keep
    the tokens it produced, the one of that very step included, not the 0 of that last output: the replay
    window would otherwise see a request that generated nothing."""
    v = _recording_vllm(monkeypatch, max_num_seqs=4)
    v.add_request("doomed", prompt_tokens=32, output_tokens=50)
    v.add_request("fine", prompt_tokens=32, output_tokens=6)
    for _ in range(4):
        v.step()
    produced = v.output_tokens["doomed"]
    assert produced >= 2
    v.scheduler.encoder_cache_mismatch_reqs.add("doomed")   # what vLLM's scheduling sets on a mismatch
    result = v.step()
    assert "doomed" in result.finished and v.output_tokens["doomed"] == produced + 1   # errored after a token
    while v.has_unfinished():
        v.step()
    window = v.scheduler.ewsjf_queue.recorder.snapshot()
    assert window.output_tokens.tolist() == [produced + 1, 6]
    assert window.finish_s[0] == v.finish_time["doomed"] and np.isfinite(window.first_token_s).all()
    v.scheduler.shutdown()


def test_a_prefix_cache_reset_gives_the_tuners_window_the_waiting_requests_new_sizes(monkeypatch):
    """"x" shares 992 of its 1000 prompt tokens with a finished request and is recorded so. vLLM's reset_prefix_cache
    drops those blocks: the queue sizes "x" anew, and the tuner's window must too, or a replay of it would serve "x"
    as an 8-token job the live engine no longer had."""
    monkeypatch.delenv("EWSJF_CONFIG", raising=False)
    tuner = {"executor": "thread", "retune_every_s": 1e9, "min_window_requests": 10_000}
    v = VirtualVLLM(scheduler="ewsjf", max_num_seqs=8, max_num_batched_tokens=2048,
                    scheduler_kwargs={"ewsjf_config": {"tuner": tuner}})
    v.add_request("seed", prompt_tokens=1000, output_tokens=2, prefix_group=1, prefix_tokens=992)
    while v.has_unfinished():
        v.step()
    v.add_request("x", prompt_tokens=1000, output_tokens=2, prefix_group=1, prefix_tokens=992)
    recorder = v.scheduler.ewsjf_queue.recorder
    assert recorder.snapshot().cached_tokens.tolist() == [0, 992]
    assert v.scheduler.reset_prefix_cache()
    assert recorder.snapshot().cached_tokens.tolist() == [0, 0]
    v.scheduler.shutdown()
