#!/usr/bin/python3
"""cloud-init's single boot process, started straight from its entry point.

Debian's /usr/bin/cloud-init is an easy_install-style script: it imports importlib.metadata and
scans every installed distribution's metadata to find the entry point
`cloud-init = cloudinit.cmd.main:main` on each start. Under emulation that is seconds on the way
to SSH; this file calls the same function with the same arguments (cloud-init-main.service runs
it with --all-stages through a drop-in baked by labsmith).
"""
import sys

from cloudinit.cmd.main import main

if __name__ == "__main__":
    sys.argv[0] = "cloud-init"
    sys.exit(main())
