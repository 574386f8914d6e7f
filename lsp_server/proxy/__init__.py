"""`stagecoder proxy`: an OpenAI-compatible completions server that answers with staged text.

`fim` reads a request (a DeepSeek-Coder FIM prompt, or prompt + suffix) into the document around
the cursor; `app` is the ASGI application (Starlette, served by uvicorn: the `proxy` extra) that
runs each one through the completion engine.
"""
