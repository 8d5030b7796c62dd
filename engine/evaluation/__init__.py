"""Measuring the engine: `nemodiff bench` (modes), the pass profile (`bench --profile`: each pass
width against its weight matmuls) and the GPU forward benchmark, FIM quality on
held-out code, the lossless rule, the transformers oracle and the corpus split they share
with training."""
