"""ewsjf_core.commit: the fused flush sums the backlog exactly as numpy does (due points, and with them the
admission order, must not depend on where the sum is taken); the config says which fields re-partition."""

import dataclasses

import numpy as np

from ewsjf_core.commit import pairwise_sum
from ewsjf_core.config import EWSJFConfig


def test_pairwise_sum_equals_numpy_bit_for_bit():
    rng = np.random.default_rng(7)
    for n in list(range(0, 140)) + [255, 256, 257, 1000, 4099, 70001]:
        a = rng.random(n) * 10.0 ** rng.integers(0, 9, n)
        a[rng.random(n) < 0.3] = 0.0
        assert pairwise_sum(a) == a.sum(), n
    work = rng.random((5, 13)) * 1e4          # the shape the kernel sums: class rows x (queues + lane)
    assert pairwise_sum(work.ravel()) == work.sum()


def test_partition_fields_are_marked_on_the_config():
    base = EWSJFConfig()
    marked = {f.name for f in dataclasses.fields(EWSJFConfig) if f.metadata.get("partition")}
    assert {"window", "k0", "alpha", "max_queues", "band_up", "max_bubbles", "output_weight"} <= marked
    assert base.replace(max_queues=5).needs_new_partition(base)
    assert base.replace(bubble_width=0.5).needs_new_partition(base)
    assert not base.replace(a_u=0.5, max_wait=3.0, order_chunk=64).needs_new_partition(base)
    assert not base.needs_new_partition(base)
