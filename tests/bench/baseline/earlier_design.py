"""The earlier design's cache hit, as a Lambda function: FastAPI + Mangum + redis-py.

`GET /api/v1/video/recommendations/{user_id}` reads the user's cached page, one JSON
string at `reco:baseline:{user_id}:20`, with one Redis `GET`, and returns it as is; a
miss is a 404. `bench-tail` (tests/bench/src/bin/bench-tail.rs) stores the pages and
runs this file with `REDIS_URL` and `AWS_LAMBDA_RUNTIME_API` set.

The runtime loop at the bottom does what awslambdaric would (not installed: it needs a C
build): long-poll `invocation/next`, call the handler, post its result or the error.
"""

import json
import os
import time
import traceback
import urllib.request

import redis
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from mangum import Mangum

app = FastAPI()
# One client per instance, made at import (the init phase), as a Lambda function does.
store = redis.Redis.from_url(os.environ["REDIS_URL"])


@app.get("/api/v1/video/recommendations/{user_id}")
def recommendations(user_id: str):
    raw = store.get(f"reco:baseline:{user_id}:20")
    if raw is None:
        return JSONResponse({"success": False, "error": "not_found"}, status_code=404)
    return Response(content=raw, media_type="application/json")


handler = Mangum(app, lifespan="off")


class Context:
    def __init__(self, request_id, deadline_ms):
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "earlier-design")
        self.deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(self.deadline_ms - int(time.time() * 1000), 0)


def post(url, payload):
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request).close()


def main():
    base = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/invocation"
    while True:
        with urllib.request.urlopen(f"{base}/next") as r:
            request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
            deadline_ms = int(r.headers.get("Lambda-Runtime-Deadline-Ms") or 0)
            event = json.loads(r.read())
        try:
            result = handler(event, Context(request_id, deadline_ms))
        except Exception as e:
            post(
                f"{base}/{request_id}/error",
                {
                    "errorMessage": str(e),
                    "errorType": type(e).__name__,
                    "stackTrace": traceback.format_exc().splitlines(),
                },
            )
            continue
        post(f"{base}/{request_id}/response", result)


if __name__ == "__main__":
    main()
