"""A real SMTP server for the adapter's tests (aiosmtpd), on 127.0.0.1 only.

Every accepted message is written to MAILDIR/NNNNN.eml, with NNNNN.json beside it telling
which client port delivered it (to prove connection reuse) and whether AUTH happened.
Recipients starting with "reject" get 550, with "busy" get 451.
Prints READY when listening; runs until killed.
"""

import argparse
import asyncio
import itertools
import json
import pathlib
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, maildir):
        self.maildir = pathlib.Path(maildir)
        self.counter = itertools.count()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 Mailbox unavailable"
        if address.startswith("busy"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        number = next(self.counter)
        stem = self.maildir / f"{number:05}"
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        stem.with_suffix(".json").write_text(
            json.dumps(
                {
                    "peer_port": session.peer[1],
                    "authenticated": bool(session.authenticated),
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                }
            )
        )
        # Written last: the test waits for the .eml, so the .json is there when it looks.
        stem.with_suffix(".tmp").write_bytes(content)
        stem.with_suffix(".tmp").rename(stem.with_suffix(".eml"))
        return "250 Message accepted"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth", help="user:password required before MAIL")
    parser.add_argument(
        "--no-smtputf8",
        action="store_true",
        help="do not offer SMTPUTF8 (RFC 6531): Unicode mailboxes are then refused",
    )
    args = parser.parse_args()

    kwargs = {}
    context = None
    if args.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    if args.tls == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            return AuthResult(success=ok, handled=False)

        kwargs.update(
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=args.tls != "none",
        )
    controller = Controller(
        Handler(args.maildir),
        hostname="127.0.0.1",
        port=args.port,
        ssl_context=context if args.tls == "implicit" else None,
        enable_SMTPUTF8=not args.no_smtputf8,
        **kwargs,
    )
    controller.start()
    print("READY", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
