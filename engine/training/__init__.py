"""Training the bundled demo model: corpus, tokenizer, joint AR + diffusion objective, trainer."""
