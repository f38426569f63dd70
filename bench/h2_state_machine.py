"""What serving HTTP/2 in Python would cost before any server code: the ``h2`` state machine's
CPU per request on the server side (``python -m bench.h2_state_machine``).

A client and a server ``H2Connection`` talk in memory; only the server's calls are timed
(decoding the request's HEADERS and DATA frames, encoding a reply's HEADERS and DATA, flow
control), with bodies the size of a filter call's at 1,000 nodes (names mode). This is the floor
of an HTTP/2 protocol of our own on asyncio; a server adds its transport and ASGI glue on top.
"""

from __future__ import annotations

import argparse
import time

import h2.config
import h2.connection
import h2.events

from bench.common import machine

REQUEST_HEADERS = [
    (":method", "POST"), (":path", "/filter"), (":scheme", "https"),
    (":authority", "placement-extender:8888"), ("content-type", "application/json"),
    ("accept-encoding", "gzip"), ("user-agent", "kube-scheduler/v1.36.2"),
]  # fmt: skip


def run(requests: int, body_bytes: int) -> float:
    """Server CPU seconds per request."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    server = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    body = b"x" * body_bytes
    reply_headers = [(b":status", b"200"), (b"content-type", b"application/json"),
                     (b"content-length", str(body_bytes).encode())]  # fmt: skip
    spent = 0.0
    for i in range(requests):
        stream = 1 + 2 * i
        client.send_headers(stream, [*REQUEST_HEADERS, ("content-length", str(body_bytes))])
        client.send_data(stream, body, end_stream=True)
        wire = client.data_to_send()
        started = time.process_time()
        for event in server.receive_data(wire):
            if isinstance(event, h2.events.DataReceived):
                server.acknowledge_received_data(event.flow_controlled_length, stream)
        server.send_headers(stream, reply_headers)
        server.send_data(stream, body, end_stream=True)
        out = server.data_to_send()
        spent += time.process_time() - started
        for event in client.receive_data(out):
            if isinstance(event, h2.events.DataReceived):
                client.acknowledge_received_data(event.flow_controlled_length, stream)
        # the client's window updates go back as a real client's would (timed: server work)
        started = time.process_time()
        server.receive_data(client.data_to_send())
        spent += time.process_time() - started
    return spent / requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--body-bytes", type=int, default=16 * 1024)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    per_request = run(args.requests, args.body_bytes)
    print(f"h2 server side, {args.body_bytes} B request and reply: "
          f"{per_request * 1e6:.0f} µs CPU per request")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
