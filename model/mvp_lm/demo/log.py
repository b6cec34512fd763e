"""Progress lines of the demo command (timestamped, flushed: the command usually runs under nohup)."""
import time

_START = time.time()


def step(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')} +{time.time() - _START:6.0f}s] {msg}", flush=True)
