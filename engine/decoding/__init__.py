"""Running a request: `Engine` (prompt -> runner -> mode -> events), the runner that owns the
model and its cache (and on a GPU the CUDA graphs of its passes: `graphs`), the sequence being
written, sampling, the commit policy and the modes; `remote` is the same interface over HTTP."""
