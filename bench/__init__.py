"""ewsjf.bench: trace replay and microbenchmarks."""
