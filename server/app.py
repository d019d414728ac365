"""The Starlette app: the page, the JSON API, streaming, limits and the optional token.

Routes (README "Write in the browser" has curl examples):
    GET  /                      the page          GET /api/model    the model's identity
    POST /api/generate          texts and nats    GET /api/status   generations running
    POST /api/generate/stream   server-sent events as characters are drawn
    POST /api/score             per-character nats of a text

Every client mistake is a 4xx whose body is one line, {"error": "..."}. CPU work never runs on
the event loop: primes and scores run on worker threads, sampling on the scheduler's thread.
"""
import asyncio
import json
import threading
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from stages.generate import strategy_names

from .guard import Guard
from .inputs import BadInput, Limits, generate_request, parse_body, score_request
from .jobs import SampledJob, StreamJob, text_nats
from .scheduler import Scheduler

STATIC = Path(__file__).parent / "static"
POLL_S = 0.02          # how often a waiting response collects new characters
KEEPALIVE_S = 1.0      # a comment line this often while nothing is produced: notices a gone client


class Service:
    """The model, its vocabulary and identity, the scheduler and the count of running work."""

    def __init__(self, net, vocab, identity, limits=Limits()):
        self.net, self.vocab, self.identity, self.limits = net, vocab, identity, limits
        self.chars = [vocab.decode([i]) for i in range(vocab.size)]
        # read once: looking the plug-ins up scans every installed package (~10 ms a request)
        self.strategies = strategy_names()
        self.scheduler = Scheduler(net)
        self.running = 0
        self.beams = []           # beam searches on their own threads, until they end

    def claim(self):
        """A slot for one generation or scoring, or 429 when all are taken."""
        if self.running >= self.limits.max_concurrent:
            raise BadInput(f"the server is running its maximum of {self.limits.max_concurrent} "
                           "generations (--max-concurrent); retry shortly", 429)
        self.running += 1

    def release(self):
        self.running -= 1

    async def start(self, prime_ids, s):
        """A running job for these settings (the prime's forward runs on a worker thread)."""
        if s.strategy == "beam":
            job = await anyio.to_thread.run_sync(StreamJob, self.net, self.vocab, prime_ids, s)
            threading.Thread(target=job.run, name="beam", daemon=True).start()
            self.beams = [j for j in self.beams if not j.finished] + [job]
        else:
            job = await anyio.to_thread.run_sync(SampledJob, self.net, self.chars, prime_ids, s)
            self.scheduler.submit(job)
        return job

    async def results(self, prime_ids, job):
        """{"text", "nats", "nats_per_char", "char_nats"} per text, as `generate --format json`."""
        if isinstance(job, SampledJob):
            return job.results()
        return await anyio.to_thread.run_sync(job.results, self.net, self.vocab, prime_ids)


async def read_json(request, limit):
    """The body's JSON object, refusing wrong content types and bodies over `limit` bytes."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise BadInput("send the body as JSON with the header Content-Type: application/json", 415)
    declared = request.headers.get("content-length")
    too_big = BadInput(f"the body is over {limit} bytes (the server's --max-body); send less", 413)
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_big
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise too_big
    return parse_body(bytes(raw))


def sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class JobStream(StreamingResponse):
    """A streamed response that stops its job however the response ends (done, error, gone)."""

    def __init__(self, content, job, release):
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        self.job, self.release = job, release

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.job.cancel()
            self.release()


def build_app(service, token=None, loopback=True):
    limits = service.limits

    async def page(request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def model(request):
        return JSONResponse(service.identity)

    async def status(request):
        requests, streams = service.scheduler.active()
        beams = sum(not j.finished for j in service.beams)
        return JSONResponse({"running": service.running, "sampled_requests": requests,
                             "sampled_streams": streams, "beam_searches": beams,
                             "steps": service.scheduler.steps})

    async def generate(request):
        prime_ids, s = generate_request(await read_json(request, limits.max_body),
                                        service.vocab, limits, service.strategies)
        service.claim()
        try:
            job = await service.start(prime_ids, s)
            try:
                while not job.take()[1]:
                    if await request.is_disconnected():
                        return JSONResponse({"error": "client left"}, status_code=499)
                    await asyncio.sleep(POLL_S)
            finally:
                job.cancel()
            if job.error:
                return JSONResponse({"error": job.error}, status_code=500)
            return JSONResponse({"texts": await service.results(prime_ids, job)})
        finally:
            service.release()

    async def stream(request):
        prime_ids, s = generate_request(await read_json(request, limits.max_body),
                                        service.vocab, limits, service.strategies)
        service.claim()
        try:
            job = await service.start(prime_ids, s)
        except BaseException:
            service.release()
            raise

        async def events():
            yield sse("start", {"prime": service.vocab.decode(prime_ids), "num": s.num,
                                "seed": s.seed})
            quiet = 0.0
            while True:
                pieces, finished = job.take()
                if pieces:
                    quiet = 0.0
                    yield sse("text", {"pieces": [[i, t, p] for i, t, p in pieces]})
                if finished:
                    break
                if quiet >= KEEPALIVE_S:
                    quiet = 0.0
                    yield ": still working\n\n"
                await asyncio.sleep(POLL_S)
                quiet += POLL_S
            if job.error:
                yield sse("error", {"error": job.error})
            else:
                yield sse("done", {"texts": await service.results(prime_ids, job)})
        return JobStream(events(), job, service.release)

    async def score(request):
        context, ids = score_request(await read_json(request, limits.max_body), service.vocab)
        service.claim()
        try:
            nll, nats, per_char = await anyio.to_thread.run_sync(text_nats, service.net, context, ids)
        finally:
            service.release()
        text = service.vocab.decode(ids)
        return JSONResponse({"chars": list(text), "char_nats": [None if x != x else round(float(x), 5)
                                                                for x in nll],
                             "nats": nats, "nats_per_char": per_char, "scored": int((nll == nll).sum())})

    async def bad_input(request, exc):
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    async def http_error(request, exc):
        message = {404: f"no such route {request.url.path}; see the README for the API",
                   405: f"{request.method} is not allowed on {request.url.path}"}
        return JSONResponse({"error": message.get(exc.status_code, str(exc.detail))},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    routes = [Route("/", page), Route("/api/model", model), Route("/api/status", status),
              Route("/api/generate", generate, methods=["POST"]),
              Route("/api/generate/stream", stream, methods=["POST"]),
              Route("/api/score", score, methods=["POST"]),
              Mount("/static", StaticFiles(directory=STATIC))]
    @asynccontextmanager
    async def lifespan(app):
        yield
        service.scheduler.close()

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={BadInput: bad_input, HTTPException: http_error})
    return Guard(app, token=token, loopback=loopback)
