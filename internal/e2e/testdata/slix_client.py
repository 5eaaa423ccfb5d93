#!/usr/bin/env python3
"""slixmpp as an unmodified third-party XEP-0257 client, for the saslcert e2e suite.

Run by internal/e2e (TestIntegrationSlixmpp); written for Debian's python3-slixmpp 1.8.3.

 1. Logs in with the password (SASL PLAIN over STARTTLS).
 2. Uploads the certificate from --cert with the stock xep_0257 plugin:
    add_cert(name, base64_der) -- no 'to', so the server delegates it (XEP-0355).
 3. Lists the certificates with get_certs() and checks that the uploaded one is there.
 4. Disconnects, then logs in again presenting --cert/--key in TLS with SASL EXTERNAL only.
 5. Prints the bound JID and exits 0.
With --external-only it does steps 4-5 only: a refused EXTERNAL login exits 1 with the SASL
condition on stderr, without falling back to another mechanism.

Output: lines starting with "slix: " on stdout that the Go test parses:
    slix: password-login bound=<full JID> mechanism=<mech>
    slix: uploaded name=<name>
    slix: listed name=<name> fingerprint=sha256:<hex> users=<comma-separated resources>
    slix: external-login bound=<full JID> mechanism=<mech>
Errors go to stderr. Exit status: 0 success, 1 failure, 2 usage, 3 hard timeout.

slixmpp quirks handled here (1.8.3):
  * connect(address=(ip, port)) still resolves the JID's domain (A/AAAA) and connects to
    whatever it finds there on port 5222, using the given address only if nothing resolves
    (xmlstream.py _connect_routine/_pick_dns_answer). get_dns_records is overridden so that
    only the given loopback address is ever used.
  * On a SASL <failure/> it marks the mechanism as tried and silently tries the next offered
    one (feature_mechanisms _handle_fail -> _send_auth), e.g. SCRAM with an empty password.
    sasl_mech='EXTERNAL' (feature_mechanisms.use_mech) limits it to EXTERNAL; the
    failed_auth event is turned into a failure here, so a refusal is never retried.
  * A certfile/keyfile that cannot be loaded is only logged at debug level and the client
    then silently connects without a certificate (xmlstream.py get_ssl_context); the pair is
    loaded once up front so that such a mistake fails loudly.
  * With a JID without a localpart slixmpp forces ANONYMOUS; the JID here always has one.
  * Certificate verification is on (CERT_REQUIRED, hostname = the JID's domain) and
    ca_certs is the test server's certificate.
  * Connection failures are retried forever with back-off; connection_failed ends the run.
"""

import argparse
import asyncio
import base64
import hashlib
import logging
import os
import signal
import ssl
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

PREFIX = "slix: "


def out(msg):
    print(PREFIX + msg, flush=True)


def fail(msg):
    print("slix_client: " + msg, file=sys.stderr, flush=True)


class Failure(Exception):
    pass


class Client(slixmpp.ClientXMPP):
    """A ClientXMPP that only ever connects to the given address."""

    def __init__(self, jid, password, host, port, **kwargs):
        super().__init__(jid, password, **kwargs)
        self._fixed = (host, port)
        self.outcome = asyncio.get_running_loop().create_future()
        self.mechanism = None
        self.add_event_handler("session_start", self._on_session_start)
        self.add_event_handler("auth_success", self._on_auth_success)
        self.add_event_handler("failed_auth", self._on_failed_auth)
        self.add_event_handler("failed_all_auth", lambda _: self._fail("no SASL mechanism left"))
        self.add_event_handler("no_auth", lambda _: self._fail("no usable SASL mechanism offered"))
        self.add_event_handler("ssl_invalid_chain", lambda e: self._fail("server certificate not trusted: %s" % e))
        self.add_event_handler("connection_failed", self._on_connection_failed)
        self.add_event_handler("stream_error", lambda e: self._fail("stream error: %s" % e["condition"]))
        self.add_event_handler("disconnected", lambda r: self._fail("disconnected before the session started (%s)" % r))

    async def get_dns_records(self, domain, port=None):
        # Never resolve the JID's domain: use the loopback address given.
        return [(domain, self._fixed[0], self._fixed[1])]

    def _fail(self, msg):
        if not self.outcome.done():
            self.outcome.set_exception(Failure(msg))

    def _on_connection_failed(self, err):
        self.cancel_connection_attempt()  # no endless retries
        self._fail("connection failed: %s" % err)

    def _on_auth_success(self, _):
        self.mechanism = self["feature_mechanisms"].mech.name

    def _on_failed_auth(self, stanza):
        self._fail("SASL failure: %s %s" % (stanza["condition"], stanza["text"]))
        # Do not let slixmpp go on with another mechanism.
        self.abort()

    def _on_session_start(self, _):
        if not self.outcome.done():
            self.outcome.set_result(None)


async def session(args, resource, password, mech, certfile=None, keyfile=None):
    host, port = args.addr.rsplit(":", 1)
    xmpp = Client("%s/%s" % (args.jid, resource), password, host, int(port), sasl_mech=mech)
    xmpp.register_plugin("xep_0030")
    xmpp.register_plugin("xep_0257")
    xmpp.ca_certs = args.ca
    if certfile:
        xmpp.certfile, xmpp.keyfile = certfile, keyfile
    xmpp.connect(address=(host, int(port)), force_starttls=True)
    await xmpp.outcome
    return xmpp


async def close(xmpp):
    await xmpp.disconnect(wait=5)


async def run(args):
    with open(args.cert, "rb") as f:
        pem = f.read().decode("ascii")
    # The file may hold a chain (the certificate, then its CAs): use the first.
    end = "-----END CERTIFICATE-----"
    der = ssl.PEM_cert_to_DER_cert(pem[: pem.index(end) + len(end)] + "\n")
    b64 = base64.b64encode(der).decode("ascii")
    fingerprint = "sha256:" + hashlib.sha256(der).hexdigest()
    # Fail loudly on an unusable certificate/key pair (slixmpp would not).
    ssl.create_default_context().load_cert_chain(args.cert, args.key)

    if not args.external_only:
        await upload(args, b64, fingerprint)

    # 4-5: SASL EXTERNAL with the certificate, no password.
    xmpp = await session(args, "slix-cert", "", "EXTERNAL", args.cert, args.key)
    try:
        if xmpp.mechanism != "EXTERNAL":
            raise Failure("authenticated with %s, not EXTERNAL" % xmpp.mechanism)
        out("external-login bound=%s mechanism=%s" % (xmpp.boundjid.full, xmpp.mechanism))
    finally:
        await close(xmpp)


async def upload(args, b64, fingerprint):
    password = os.environ.get("SLIX_PASSWORD", "")
    if not password:
        raise Failure("SLIX_PASSWORD is not set")

    # 1-3: password login, upload, list.
    xmpp = await session(args, "slix-pw", password, "PLAIN")
    out("password-login bound=%s mechanism=%s" % (xmpp.boundjid.full, xmpp.mechanism))
    try:
        await xmpp["xep_0257"].add_cert(args.name, b64, timeout=args.timeout)
        out("uploaded name=%s" % args.name)
        iq = await xmpp["xep_0257"].get_certs(timeout=args.timeout)
        found = False
        for item in iq["sasl_certs"]["items"]:
            item_der = base64.b64decode("".join(item["x509cert"].split()))
            item_fp = "sha256:" + hashlib.sha256(item_der).hexdigest()
            out("listed name=%s fingerprint=%s users=%s" % (item["name"], item_fp, ",".join(sorted(item["users"]))))
            if item["name"] == args.name and item_fp == fingerprint:
                found = True
        if not found:
            raise Failure("the uploaded certificate %s is not listed" % fingerprint)
    except IqError as e:
        raise Failure("XEP-0257 request refused: %s %s" % (e.condition, e.text))
    except IqTimeout:
        raise Failure("XEP-0257 request timed out")
    finally:
        await close(xmpp)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--addr", required=True, help="c2s address host:port (loopback)")
    p.add_argument("--jid", required=True, help="account bare JID; password in $SLIX_PASSWORD")
    p.add_argument("--cert", required=True, help="client certificate (PEM)")
    p.add_argument("--key", required=True, help="its private key (PEM)")
    p.add_argument("--ca", required=True, help="the server's certificate (PEM) to trust")
    p.add_argument("--name", default="slixmpp", help="certificate name for <append/>")
    p.add_argument("--timeout", type=float, default=60, help="hard limit for the whole run, seconds")
    p.add_argument("--external-only", action="store_true", help="skip steps 1-3 (no password needed)")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")

    # Backstop in case the event loop itself wedges.
    signal.signal(signal.SIGALRM, lambda *_: (fail("hard timeout"), os._exit(3)))
    signal.alarm(int(args.timeout) + 10)
    try:
        asyncio.run(asyncio.wait_for(run(args), args.timeout))
    except asyncio.TimeoutError:
        fail("timed out after %ss" % args.timeout)
        return 3
    except (Failure, OSError, ssl.SSLError) as e:
        fail(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
