"""The network: NLD's transformer (`network`), its config and presets, rotary embeddings, the KV
cache and int8 weights. Knows nothing of requests, tokens as text or decoding."""
