"""Training the bundled demo model: corpus, tokenizer, joint AR + diffusion objective, and the run
itself (settings, schedule, the loop in trainer.py, checkpoints, exports)."""
