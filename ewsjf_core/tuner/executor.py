"""Where a trial's work runs, with a time limit: a thread (default for tests and live mode) or a worker
process (default for replay mode: it keeps the replay off the serving process's GIL and CPU).

`call(fn, *args, timeout=...)` returns fn's result or raises:
- TrialTimeout when fn did not finish in time. A hung thread cannot be killed: it is abandoned (a daemon)
  and later calls run on a fresh thread; after `max_abandoned` of them the executor refuses work
  (ExecutorBroken) rather than pile up stuck threads. A hung worker process is killed and restarted.
- TrialError (with the remote traceback text) when fn raised.
Neither ever touches the queue: the caller decides what a failure means (the tuner: keep last good).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
import traceback
from typing import Any, Callable


class TrialTimeout(Exception):
    pass


class TrialError(Exception):
    pass


class ExecutorBroken(Exception):
    pass


class ThreadExecutor:
    def __init__(self, max_abandoned: int = 2) -> None:
        self.max_abandoned = max_abandoned
        self.abandoned = 0

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float) -> Any:
        if self.abandoned >= self.max_abandoned:
            raise ExecutorBroken(f"{self.abandoned} trial threads hung; refusing more work")
        box: dict[str, Any] = {}
        done = threading.Event()

        def target() -> None:
            try:
                box["result"] = fn(*args)
            except BaseException as e:  # noqa: BLE001 - reported to the caller
                box["error"] = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
            finally:
                done.set()

        t = threading.Thread(target=target, name="ewsjf-tuner-trial", daemon=True)
        t.start()
        if not done.wait(timeout):
            self.abandoned += 1
            raise TrialTimeout(f"trial did not finish within {timeout:.3g} s (thread abandoned)")
        if "error" in box:
            raise TrialError(box["error"])
        return box["result"]

    def close(self) -> None:
        pass


def _worker_main(conn: Any, nice: int) -> None:
    # Bounded CPU: one BLAS/OpenMP thread (the GP fit would otherwise take every core), low priority.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except Exception:  # noqa: BLE001 - best effort
        pass
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        fn, args = msg
        try:
            conn.send((True, fn(*args)))
        except BaseException as e:  # noqa: BLE001
            conn.send((False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


_MAX_POLL_S = 1e6
"""Connection.poll refuses a timeout over 2**31 ms (OverflowError, after the call was sent: the worker's answer
was then read by the next call); a longer one is waited in slices of this."""


def _poll(conn: Any, timeout: float) -> bool:
    """conn.poll(timeout) for any timeout TunerSettings allows (up to 1e9 s and more)."""
    deadline = time.monotonic() + timeout
    while True:
        left = max(0.0, deadline - time.monotonic())
        if conn.poll(min(left, _MAX_POLL_S)):
            return True
        if left <= _MAX_POLL_S:
            return False


class ProcessExecutor:
    """One persistent worker process (spawned, so no forked locks or numba state), niced by `nice`."""

    def __init__(self, nice: int = 10, start_method: str = "spawn") -> None:
        self.nice = nice
        self._ctx = mp.get_context(start_method)
        self._proc: Any = None
        self._conn: Any = None
        self._lock = threading.Lock()

    def _ensure(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child, self.nice), daemon=True,
                                 name="ewsjf-tuner-worker")
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float) -> Any:
        with self._lock:
            self._ensure()
            try:
                self._conn.send((fn, args))
                ready = _poll(self._conn, timeout)
                if not ready:
                    self._kill()
                    raise TrialTimeout(f"trial did not finish within {timeout:.3g} s (worker killed)")
                ok, value = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError) as e:
                self._kill()
                raise TrialError(f"tuner worker died: {e!r}") from None
            if not ok:
                raise TrialError(value)
            return value

    def close(self) -> None:
        """Stop the worker. If a call is in flight (another thread waits on it), the worker is killed
        without waiting: that call then fails with TrialError, and close never blocks."""
        if not self._lock.acquire(timeout=0.1):
            proc = self._proc
            if proc is not None:
                proc.kill()
            return
        try:
            if self._proc is not None and self._proc.is_alive():
                try:
                    self._conn.send(None)
                    self._proc.join(2)
                except (OSError, BrokenPipeError):
                    pass
            self._kill()
        finally:
            self._lock.release()
