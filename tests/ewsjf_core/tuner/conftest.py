import pytest


@pytest.fixture(autouse=True, scope="package")
def _one_blas_thread():
    """The GP's matrices are tiny: one BLAS thread is faster than several on 2 shared cores, and
    leaves the other core to the rest of the machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(1):
        yield
