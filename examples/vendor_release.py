#!/usr/bin/env python3
"""Publish a firmware build as a signed fwledger release: the step a CI pipeline runs after
the firmware build.

    python examples/vendor_release.py build/lamp.bin --model lamp --hw rev-b --hw rev-c \\
        --version "$CI_TAG" --security-version 3 --home /srv/acme

It opens the vendor in the home (``--init NAME`` creates it on the first run), publishes the
image (content store + signed manifest + channel message), verifies the published manifest
against the image and the vendor key as a device would, optionally appends a heartbeat, and
prints one JSON object on stdout: the release (``seq``, ``model``, ``version``,
``security_version``, ``cid``, ``sha256``, ``size``, ``manifest_path``) plus ``vendor_key``.

Exit codes: 0 published (or, with ``--skip-existing``, already published); 1 a fwledger error
(the message and its reason on stderr); 2 bad command line.
Needs the fwledger Python package: ``pip install ./bindings/python``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional

import fwledger


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Publish a firmware image as a signed fwledger release (CI step).",
    )
    parser.add_argument("image", help="the firmware image built by the pipeline")
    parser.add_argument("--model", required=True, help="device model, e.g. smart-lamp")
    parser.add_argument(
        "--hw",
        action="append",
        required=True,
        help="compatible hardware revision (repeat, or comma-separate, for several)",
    )
    parser.add_argument("--version", required=True, help="semantic version, e.g. 1.4.0")
    parser.add_argument(
        "--security-version",
        type=int,
        default=0,
        help="anti-rollback counter; raise it when fixing a vulnerability (default 0)",
    )
    parser.add_argument(
        "--home",
        default=os.environ.get("FWLEDGER_HOME"),
        help="fwledger home of the vendor (default: $FWLEDGER_HOME, else ~/.local/share/fwledger)",
    )
    parser.add_argument("--ledger", default="embedded", help="ledger URL (default: embedded)")
    parser.add_argument("--store", default="embedded", help="content store URL (default: embedded)")
    parser.add_argument("--expires", help="release validity, e.g. 180d (default: no expiry)")
    parser.add_argument("--prerequisite", help="minimum installed version required")
    parser.add_argument("--notes", help="release notes")
    parser.add_argument("--notes-file", help="read the release notes from this file")
    parser.add_argument(
        "--heartbeat",
        metavar="DURATION",
        help="also append a heartbeat valid this long (e.g. 1h)",
    )
    parser.add_argument(
        "--init",
        metavar="NAME",
        help="create the vendor NAME in the home if it has none yet",
    )
    parser.add_argument(
        "--skip-existing",
        action="store_true",
        help="exit 0 if this model and version are already published (re-run pipelines)",
    )
    args = parser.parse_args(argv)
    args.hw = [h.strip() for item in args.hw for h in item.split(",") if h.strip()]
    if args.security_version < 0:
        parser.error("--security-version must be >= 0")
    if args.notes and args.notes_file:
        parser.error("give --notes or --notes-file, not both")
    return args


def open_vendor(args: argparse.Namespace) -> fwledger.Vendor:
    try:
        return fwledger.Vendor.open(args.home, ledger=args.ledger, store=args.store)
    except fwledger.VendorError as e:
        if e.reason != "not-initialized" or not args.init:
            raise
    return fwledger.Vendor.init(args.home, args.init, ledger=args.ledger, store=args.store)


def published(vendor: fwledger.Vendor, model: str, version: str) -> Optional[Dict[str, Any]]:
    """The channel entry of an earlier release of this model and version, if any."""
    for entry in vendor.history():
        if entry["kind"] == "release" and entry["model"] == model and entry["version"] == version:
            return entry
    return None


def run(args: argparse.Namespace) -> Dict[str, Any]:
    notes = args.notes
    if args.notes_file:
        with open(args.notes_file, encoding="utf-8") as f:
            notes = f.read().strip()
    vendor = open_vendor(args)
    with vendor:
        try:
            release = vendor.publish(
                args.image,
                model=args.model,
                hw=args.hw,
                version=args.version,
                security_version=args.security_version,
                expires=args.expires,
                prerequisite=args.prerequisite,
                notes=notes,
            )
        except fwledger.VendorError as e:
            if e.reason == "already-published" and args.skip_existing:
                entry = published(vendor, args.model, args.version) or {}
                return {"skipped": True, "message": str(e), "vendor_key": vendor.public_key, **entry}
            raise
        # Defence in depth: what was published verifies as a device would check it.
        fwledger.verify(
            manifest=release.manifest_path,
            image=args.image,
            vendor_key=vendor.public_key,
            model=args.model,
            hw=args.hw[0],
        )
        result = release.to_dict()
        result["vendor_key"] = vendor.public_key
        if args.heartbeat:
            result["heartbeat_seq"] = vendor.heartbeat(args.heartbeat)
        return result


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except fwledger.Error as e:
        print(f"error: {e} (reason: {e.reason})", file=sys.stderr)
        return 1
    except (OSError, ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
