"""Getting a model: checkpoints from a directory, the bundled demo or the Hugging Face hub, and
random-weight checkpoints of any preset size."""
