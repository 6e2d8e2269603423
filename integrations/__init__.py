"""ewsjf.integrations: engine adapters (ewsjf.integrations.vllm)."""
