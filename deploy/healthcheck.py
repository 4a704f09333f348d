#!/usr/bin/env python3
"""The image's health check: exit 0 when the capture service's /healthz answers 200.

It reads the service's own settings from the environment (KCHECKPOINT_PORT, default 10270;
KCHECKPOINT_TLS_CERT_FILE: HTTPS). With a client CA (mutual TLS) it needs a client certificate:
KCHECKPOINT_HEALTHCHECK_CERT and KCHECKPOINT_HEALTHCHECK_KEY. It talks to 127.0.0.1 only, so the
server's certificate is not checked against a name. Kubernetes ignores image health checks; the
DaemonSet in deploy/ probes the port instead.
"""

import http.client
import os
import ssl
import sys


def main() -> int:
    port = int(os.environ.get("KCHECKPOINT_PORT", "10270"))
    if os.environ.get("KCHECKPOINT_TLS_CERT_FILE"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        cert = os.environ.get("KCHECKPOINT_HEALTHCHECK_CERT")
        if cert:
            context.load_cert_chain(cert, os.environ.get("KCHECKPOINT_HEALTHCHECK_KEY"))
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=5, context=context
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if status != 200:
        print(f"unhealthy: /healthz answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
