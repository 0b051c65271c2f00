"""``python -m hadis_gateway``: run the gateway with settings from the environment."""

from __future__ import annotations

import gc
import logging
import sys

from hadis_gateway.settings import Settings, SettingsError


def main() -> int:
    # imported here, not at the top: the router's child process (spawned) re-imports this module
    # and should not load the web stack it does not use
    import uvicorn

    from hadis_gateway.auth import ApiKeysError
    from hadis_gateway.server import create_app

    try:
        settings = Settings.from_env()
    except SettingsError as e:
        print(f"hadis-gateway: {e}", file=sys.stderr)
        return 2
    # at the default level (info) nothing logged carries a prompt, an API key or a header: requests
    # are not logged (no access log unless HADIS_ACCESS_LOG; it prints the method, path and status)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every worker call at INFO: at hundreds of requests a second that is CPU the
    # gateway needs for routing (measured on the emulated E1 run), so only its warnings are kept
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        app = create_app(settings)
    except ApiKeysError as e:
        print(f"hadis-gateway: {e}", file=sys.stderr)
        return 2
    # what is alive now lives as long as the process: take it out of the cyclic garbage collector's
    # scans, so full collections under load walk only what requests allocate (tail latency)
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        # outlive the idle connections clients and load balancers pool (httpx 5 s, ALB 60 s): a
        # client never reuses a connection the gateway closed at that very moment
        timeout_keep_alive=75,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
