"""nemodiff's headless engine: NLD models in AR, block-diffusion and self-speculation modes.

Typical use::

    import engine
    eng = engine.load("demo")
    for event in eng.generate(engine.Request(prompt="def add(a, b):\n")):
        ...
"""
