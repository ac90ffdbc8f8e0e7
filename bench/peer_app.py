"""The starter's app with two routes that stand in for real work, for
bench/peers.py only: the app itself never has them."""

import time

from wsgi import app


@app.get("/bench/json")
def records():
    """About 1 ms of CPU: build and serialise 200 records."""
    items = [
        {"id": n, "name": f"item {n}", "price": n * 1.5, "tags": ["new", "sale"]}
        for n in range(200)
    ]
    return {"count": len(items), "items": items}


@app.get("/bench/wait")
def wait():
    """20 ms of waiting, as for a database: the worker is idle meanwhile."""
    time.sleep(0.02)
    return {"waited_ms": 20}
