"""The simulator's key files: NAME.pem (private, readable by its owner only) and NAME.pub.pem
in a keys directory, made once at first use.

The private file is the pair: it is written under a temporary name and linked into place, so
of two processes making it at once (`p2p serve` and its children) one wins and both use its
key; the public file is derived from it, and rewritten if it ever says otherwise."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from service.ocp.signing import generate_keypair, public_key_of

log = logging.getLogger("banksim")

#: The key ids of the development pairs (`p2p bank-sim`'s defaults).
BANK_KEY_ID = "bank-dev"
PLATFORM_KEY_ID = "platform-dev"


def key_paths(keys_dir: Path, name: str) -> tuple[Path, Path]:
    """(NAME.pem, NAME.pub.pem) in ``keys_dir``."""
    return keys_dir / f"{name}.pem", keys_dir / f"{name}.pub.pem"


def key_pair(keys_dir: Path, name: str) -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of NAME.pem and NAME.pub.pem in ``keys_dir``, made once."""
    private, public = key_paths(keys_dir, name)
    if not private.exists():
        keys_dir.mkdir(parents=True, exist_ok=True)
        made = keys_dir / f".{name}.pem.{os.getpid()}"
        with os.fdopen(os.open(made, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(generate_keypair()[0])
        try:
            os.link(made, private)
            log.info("made the key pair %s and %s", private, public)
        except FileExistsError:
            pass  # another process made it first: its key is the pair
        finally:
            made.unlink()
    private_pem = private.read_bytes()
    public_pem = public_key_of(private_pem)
    if not public.exists() or public.read_bytes() != public_pem:
        written = keys_dir / f".{name}.pub.pem.{os.getpid()}"
        written.write_bytes(public_pem)
        os.replace(written, public)
    return private_pem, public_pem
