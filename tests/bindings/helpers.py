"""Small helpers shared by the host-API tests."""


class Clock:
    """A settable clock: queues read `clock()`, tests move `clock.t`."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def drain(q) -> list:
    """Pop everything, in admission order."""
    out = []
    while q:
        out.append(q.pop())
    return out
