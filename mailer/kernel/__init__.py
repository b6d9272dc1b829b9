"""The shared kernel: small pieces every package may use (no domain, no adapters)."""
