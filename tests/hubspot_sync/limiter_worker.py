"""A process that takes permits from a shared rate limiter and prints when each was granted.

test_ratelimit starts several of these at once against one store and checks the recorded timestamps:
``python -m tests.hubspot_sync.limiter_worker --url sqlite:///... --name t1 --rates 8/400,3/100 --permits 6``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

from hubspot_sync import ratelimit


def parse_rates(text: str) -> tuple[ratelimit.Rate, ...]:
    rates = []
    for part in text.split(","):
        limit, window = part.split("/")
        rates.append(ratelimit.Rate(int(limit), int(window)))
    return tuple(rates)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--rates", required=True)
    parser.add_argument("--kind", default="general")
    parser.add_argument("--permits", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--start-at", type=float, default=0.0, help="epoch seconds; all workers start together"
    )
    args = parser.parse_args()

    rates = parse_rates(args.rates)
    config = ratelimit.LimiterConfig(
        url=args.url, name=args.name, general=rates, search=rates, share=1.0, max_wait_s=120
    )
    limiter = ratelimit.Limiter.from_config(config)
    stamps: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(args.permits):
            permit = limiter.acquire(args.kind)
            with lock:
                stamps.append(round(permit.granted_at * 1000))

    delay = args.start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    threads = [threading.Thread(target=work) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    limiter.close()
    print(json.dumps(stamps))


if __name__ == "__main__":
    main()
