import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ewsjf_core.routing import route_lengths
from tests.ewsjf_core import reference as ref

LO = np.array([10.0, 1000.0, 8000.0])
HI = np.array([200.0, 2000.0, 9000.0])


def _route(sizes, max_bubbles=2, width=0.25):
    center = np.zeros(max_bubbles)
    active = np.zeros(max_bubbles, np.bool_)
    idle = np.full(max_bubbles, 7, np.int64)
    q = route_lengths(np.asarray(sizes, float), LO, HI, 3, 1.1, 0.9, center, active, idle, width, 8)
    return q.tolist(), center, active, idle


def test_bands_and_holes():
    q, center, active, idle = _route([5, 10, 200, 220, 221, 250, 899, 900, 950, 5000, 9900, 20000])
    assert q[:4] == [0, 0, 0, 0]     # below the shortest queue, inside, and 220 = 1.1 * 200 join queue 0
    assert q[4:6] == [8, 8]          # 221 falls in a hole: bubble 8 opens around it and takes 250 too
    assert q[6] == 9                 # 899 is outside bubble 8's window and below 0.9 * 1000: bubble 9
    assert q[7:9] == [1, 1]          # 900 = 0.9 * 1000 joins queue 1
    assert q[9] == 2                 # bubbles full: 5000 goes to the nearer neighbour (8000 in log terms)
    assert q[10] == 2 and q[11] == 2  # 9900 <= 1.1 * 9000; beyond the longest queue, bubbles full
    assert active.tolist() == [True, True] and center.tolist() == [221.0, 899.0] and idle.tolist() == [0, 0]


@given(st.lists(st.floats(1.0, 50000.0), min_size=1, max_size=60), st.integers(0, 4), st.floats(0.05, 1.0))
def test_matches_reference(sizes, max_bubbles, width):
    got, center, active, _ = _route(sizes, max_bubbles, width)
    bubbles = [None] * max_bubbles
    want = [ref.route(x, LO.tolist(), HI.tolist(), 1.1, 0.9, bubbles, max_bubbles, width, 8) for x in sizes]
    assert got == want
    assert [c if a else None for c, a in zip(center.tolist(), active.tolist())] == bubbles
