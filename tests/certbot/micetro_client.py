"""Drives the unmodified certbot-dns-micetro plugin's API client against a running Central.

Usage: micetro_client.py add|del DOMAIN VALIDATION_NAME VALIDATION

The client class is the one certbot uses for a dns-01 challenge (no ACME server is
involved). Settings come from the environment: IPAM_URL (for example
https://127.0.0.1:1231/mmws/api/v2), IPAM_USER, IPAM_PASSWORD, and REQUESTS_CA_BUNDLE (the
Central certificate to trust). Prints "ok" on success; any failure raises, so the exit code
is non-zero.
"""

import os
import sys

from certbot_dns_micetro.dns_micetro import _MicetroClient


def main() -> int:
    if len(sys.argv) != 5 or sys.argv[1] not in ("add", "del"):
        print(__doc__, file=sys.stderr)
        return 2
    action, domain, name, validation = sys.argv[1:]
    client = _MicetroClient(
        os.environ["IPAM_USER"],
        os.environ["IPAM_PASSWORD"],
        os.environ["IPAM_URL"],
        None,
    )
    if action == "add":
        client.add_txt_record(domain, name, validation, 120)
        zone = client._find_zone(domain)
        found = client._find_txt_record_id(zone, name.rstrip("."), validation)
        if not found:
            raise SystemExit(f"the TXT record {name} was not found after it was added")
    else:
        client.del_txt_record(domain, name, validation)
        zone = client._find_zone(domain)
        left = client._find_txt_record_id(zone, name, validation)
        if left:
            raise SystemExit(f"the TXT record {name} is still there ({left})")
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
