# -*- test-case-name: linkrtc.test.test_cli -*-
"""
The C{linkrtc} command (setup.cfg C{console_scripts}); C{twistd linkrtc}
runs the switch itself.

    linkrtc token NAME [--ttl S] [--grant outgoing] [--grant trace]
                       [--grant admin] [--grant metrics]
                       [--trunk NAME] [--kid KID]
                       [--auth-secret S | --config FILE]

prints an access token for client C{NAME} (docs/security.rst). The key
comes from C{--auth-secret}, else the C{--config} file's C{auth-secret} /
C{[auth-secrets]}, else the environment variable C{LINKRTC_AUTH_SECRET}.

    linkrtc token NAME --sip-password [--ttl S] [--grant outgoing] [--kid KID]

prints SIP credentials derived from the same key instead, for a phone
registering as C{NAME} (docs/security.rst, "SIP passwords from the
secret"), as one JSON line: C{{"username": ..., "password": ...,
"realm": ..., "expires": UNIX_SECONDS}}.
"""

import argparse
import json
import os
import sys
import time

from linkrtc.config import ConfigError, loadTOML
from linkrtc.signalling.messages import isValidClientName
from linkrtc.signalling.tokens import MAX_SIP_TTL, Grants, mintToken, parseKeys, sipCredentials
from linkrtc.sip.registrar import DEFAULT_REALM

__all__ = ["main"]

#: The grants C{--grant} takes.
GRANT_NAMES = ("outgoing", "trace", "app", "admin", "metrics")


def _parser():
    parser = argparse.ArgumentParser(prog="linkrtc", description="LinkRTC tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser(
        "token", help="print an access token (JWT, HS256) for a client",
        description="Print an access token (JWT, HS256) that lets a client register as NAME.")
    token.add_argument("name", metavar="NAME", help="the client name (the token's sub)")
    token.add_argument("--ttl", type=float, default=3600.0,
                       help="seconds until the token expires [default: 3600]")
    token.add_argument("--grant", action="append", default=[], choices=GRANT_NAMES,
                       help="a grant: outgoing (place calls), trace (see its own calls' "
                            "ladder), app (call-control API), admin (/admin, /status, "
                            "/metrics, /version), metrics (/metrics only); repeatable")
    token.add_argument("--trunk", action="append", default=[],
                       help="restrict outgoing calls to this trunk; repeatable")
    token.add_argument("--kid", default=None,
                       help="the key id to sign with [default: the first key]")
    token.add_argument("--auth-secret", default=None,
                       help="the switch's --auth-secret [default: from --config, else "
                            "LINKRTC_AUTH_SECRET]")
    token.add_argument("--config", "-c", default=None, help="the switch's TOML configuration")
    token.add_argument("--sip-password", action="store_true",
                       help="print SIP credentials (username, password, realm, expires) "
                            "derived from the key instead of a token; --grant outgoing "
                            f"lets the phone call out; --ttl at most {int(MAX_SIP_TTL)}")
    return parser


def _realm(args):
    """@return: the C{sip-realm} of C{--config}, else the default."""
    if args.config:
        return loadTOML(args.config).sipRealm or DEFAULT_REALM
    return DEFAULT_REALM


def _sipPassword(args, keys, now, stdout, stderr):
    """C{--sip-password}: print the derived SIP credentials as one JSON line."""
    others = [g for g in args.grant if g != "outgoing"]
    if others or args.trunk:
        stderr.write("linkrtc token: --sip-password takes only --grant outgoing\n")
        return 2
    if args.ttl > MAX_SIP_TTL:
        stderr.write(f"linkrtc token: --ttl must be at most {int(MAX_SIP_TTL)} with "
                     "--sip-password\n")
        return 2
    kid = args.kid
    if kid is None and len(keys) > 1:
        kid = next(iter(keys))  # named, so that it still works once rotated
    secret = keys[kid] if kid is not None else next(iter(keys.values()))
    creds = sipCredentials(secret, args.name, args.ttl, outgoing="outgoing" in args.grant,
                           kid=kid, now=now)
    try:
        realm = _realm(args)
    except ConfigError as e:
        stderr.write(f"linkrtc token: {e}\n")
        return 2
    stdout.write(json.dumps({"username": creds["username"], "password": creds["password"],
                             "realm": realm, "expires": creds["expires"]}) + "\n")
    return 0


def _keys(args, environ):
    """@return: C{{kid: secret}} from the command line, the file or the environment."""
    if args.auth_secret:
        return parseKeys(args.auth_secret)
    if args.config:
        config = loadTOML(args.config)
        keys = parseKeys(config.authSecret, config.authSecrets)
        if keys:
            return keys
    if environ.get("LINKRTC_AUTH_SECRET"):
        return parseKeys(environ["LINKRTC_AUTH_SECRET"])
    raise ValueError("no key: give --auth-secret, --config with auth-secret, "
                     "or set LINKRTC_AUTH_SECRET")


def main(argv=None, stdout=None, stderr=None, environ=None, now=None):
    """
    Run the C{linkrtc} command.

    @param argv: the arguments (without the program name); C{sys.argv[1:]}
        if C{None}.
    @param now: the time, Unix seconds (the system clock if C{None}).
    @return: the exit status (0 success, 2 bad usage or no key).
        A token is printed as one line; with C{--sip-password}, one JSON
        line of SIP credentials.
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    environ = os.environ if environ is None else environ
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if not isValidClientName(args.name):
        stderr.write(f"linkrtc token: {args.name!r} is not a client name "
                     "(1-64 of A-Z a-z 0-9 _ . @ + -)\n")
        return 2
    if args.ttl <= 0:
        stderr.write("linkrtc token: --ttl must be positive\n")
        return 2
    if args.trunk and "outgoing" not in args.grant:
        stderr.write("linkrtc token: --trunk needs --grant outgoing\n")
        return 2
    try:
        keys = _keys(args, environ)
        if args.kid is not None and args.kid not in keys:
            raise ValueError(f"no key with kid {args.kid!r} (have: {', '.join(keys)})")
    except (ValueError, ConfigError) as e:
        stderr.write(f"linkrtc token: {e}\n")
        return 2
    now = time.time() if now is None else now
    if args.sip_password:
        return _sipPassword(args, keys, now, stdout, stderr)
    grants = Grants(outgoing="outgoing" in args.grant, trace="trace" in args.grant,
                    app="app" in args.grant, trunks=tuple(args.trunk) or None,
                    admin="admin" in args.grant, metrics="metrics" in args.grant)
    token = mintToken(args.name, keys, now, ttl=args.ttl,
                      grants=grants, kid=args.kid)
    stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
