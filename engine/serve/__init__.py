"""nemodiff's HTTP server: the engine for editors and other machines, headless and UI-free.

    from engine.serve.app import create_app
    app = create_app(engine.load("demo"), mode="self-spec")   # then run it with uvicorn

Endpoints: POST /infill (llama.cpp), POST /v1/completions, POST /v1/chat/completions,
GET /v1/models and GET /v1/models/{id} (OpenAI), POST /v1/denoise (every engine event, for
remote viewers), GET /health. See docs/SERVING.md.
"""
