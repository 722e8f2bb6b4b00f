"""``anyconv playground``: serve the offline playground page on 127.0.0.1, or write it to a file."""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """examples:
  anyconv playground                 serve on 127.0.0.1 at a free port, print the URL
  anyconv playground --port 8123     serve on 127.0.0.1:8123
  anyconv playground --out conv.html write the self-contained page instead (open it in a browser)"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "playground",
        help="an offline page to try convolution arithmetic (shapes, padding, window, operator matrix)",
        description="Serve the playground page on 127.0.0.1 only (never on other interfaces), or write it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--out", "-o", default=None, help="write the page to this file instead of serving")
    p.add_argument("--open", action="store_true", help="also open the URL in the default browser")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..viz.playground import make_server, write_playground

    if args.out:
        path = write_playground(args.out)
        print(f"wrote {path}")
        return 0
    if not 0 <= args.port <= 65535:
        from ..cli import CommandError

        raise CommandError(f"`--port` must be between 0 and 65535; got --port={args.port}")
    server = make_server(args.port)
    host, port = server.server_address[:2]
    url = f"http://{host!s}:{port}/"
    print(f"anyconv playground at {url} (Ctrl-C stops it)", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
