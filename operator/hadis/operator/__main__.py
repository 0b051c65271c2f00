"""``python -m hadis.operator``: kopf run, standalone, scoped by ``HADIS_OPERATOR_NAMESPACES``.

``HADIS_OPERATOR_NAMESPACES``: comma-separated namespaces to serve (globs allowed, as kopf's
``--namespace``); unset or empty: every namespace (cluster-wide).
"""

from __future__ import annotations

import logging
import os

import kopf

import hadis.operator  # noqa: F401  (registers the handlers)


def main() -> None:
    logging.basicConfig(level=os.environ.get("HADIS_OPERATOR_LOG_LEVEL", "INFO"))
    namespaces = [n.strip() for n in os.environ.get("HADIS_OPERATOR_NAMESPACES", "").split(",") if n.strip()]
    kopf.run(standalone=True, namespaces=namespaces, clusterwide=not namespaces)


if __name__ == "__main__":
    main()
