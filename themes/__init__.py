"""nemodiff's themes: one TOML file per Textual theme (colours, denoising-cell variables, syntax)."""
