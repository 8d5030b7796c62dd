"""Decoding modes. Each is a generator over one sequence that yields events and returns when
the sequence is finished or cancelled; all share `DecodeState` (runner, sequence, sampler)."""
