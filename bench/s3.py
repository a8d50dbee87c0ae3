"""S3 through boto3: haniwa's S3 surface side by side with moto's ThreadedMotoServer (the LocalStack-style
peer), in the same run and on the same machine.

    python bench/s3.py                 # 64 MiB object, 200 small objects, ~1 minute on 2 cores
    python bench/s3.py --mb 256 --small 500

It prints, for each server: PUT and GET throughput of one large object through ``upload_file`` /
``download_file`` (boto3's multipart transfer, 8 MiB parts, its default concurrency), and small-object
ops/s (1 KiB ``put_object`` then ``get_object``, one client, one at a time); then haniwa / moto ratios.
haniwa runs with SigV4 credentials on, so every request's signature and payload hash are checked; moto
keeps objects in memory, haniwa writes them to disk (temp file + rename).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from haniwa.api.app import create_app  # noqa: E402
from haniwa.config import Settings  # noqa: E402
from haniwa.testing.server import serve_in_thread  # noqa: E402

__all__ = ["main"]

KEY, SECRET = "AKIDEXAMPLE", "secret-example"


@contextmanager
def haniwa(home: Path) -> Iterator[str]:
    settings = Settings(home=home, access_key_id=KEY, secret_access_key=SECRET)
    with serve_in_thread(create_app(settings)) as url:
        yield url


@contextmanager
def moto() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def client(url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(url: str, big: Path, small: int, work: Path) -> dict[str, float]:
    s3 = client(url)
    s3.create_bucket(Bucket="bench")
    mb = big.stat().st_size / 2**20
    put = timed(lambda: s3.upload_file(str(big), "bench", "big.bin"))
    back = work / f"back-{os.getpid()}.bin"
    get = timed(lambda: s3.download_file("bench", "big.bin", str(back)))
    assert back.read_bytes() == big.read_bytes(), "download differs from upload"
    back.unlink()
    payload = os.urandom(1024)

    def puts() -> None:
        for i in range(small):
            s3.put_object(Bucket="bench", Key=f"small/{i:05d}", Body=payload)

    def gets() -> None:
        for i in range(small):
            assert s3.get_object(Bucket="bench", Key=f"small/{i:05d}")["Body"].read() == payload

    small_put = timed(puts)
    small_get = timed(gets)
    return {
        "PUT MB/s": mb / put,
        "GET MB/s": mb / get,
        "small PUT ops/s": small / small_put,
        "small GET ops/s": small / small_get,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=64, help="size of the large object in MiB")
    parser.add_argument("--small", type=int, default=200, help="number of 1 KiB objects")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        big = work / "big.bin"
        big.write_bytes(os.urandom(args.mb * 2**20))
        results: dict[str, dict[str, float]] = {}
        home = work / "home"
        home.mkdir()
        with haniwa(home) as url:
            results["haniwa"] = run(url, big, args.small, work)
        with moto() as url:
            results["moto"] = run(url, big, args.small, work)
    print(f"{'measurement':<18}{'haniwa':>10}{'moto':>10}{'haniwa/moto':>13}")
    for name in results["haniwa"]:
        h, m = results["haniwa"][name], results["moto"][name]
        print(f"{name:<18}{h:>10.1f}{m:>10.1f}{h / m:>12.2f}x")


if __name__ == "__main__":
    main()
