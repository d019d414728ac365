"""`python -m pipeline serve`: the model behind an HTTP API and a page (optional extra `serve`).

scheduler.py  one thread steps every sampled stream of every request in one batched forward
jobs.py       one request's generation: its streams, random generator, stop cut-offs, output
inputs.py     JSON bodies checked field by field into settings (one-line 4xx errors)
app.py        the Starlette app: routes, limits, streaming
guard.py      the bearer token (header, cookie or ?token=) and the loopback Host check
static/       the page (plain HTML, CSS and JavaScript: no build step, no CDN)
"""
