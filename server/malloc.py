"""glibc's malloc told to give large blocks back to the system as soon as they are freed.

A password check (service/security.py) takes ``security.argon2_memory_kib`` (7 MiB by default)
for the time it runs. glibc maps a block that large on its own at first, but once such a block
is freed it raises its threshold for mapping to that size (up to 32 MiB), and from then on
serves the next ones from the asking thread's arena, which keeps their memory when they are
freed: after each of four serving threads had checked a password, a worker held 28 MiB more,
for good. With the threshold fixed, blocks of 1 MiB and more are mapped when asked for and
unmapped when freed, whichever thread asks.
"""

import ctypes

#: mallopt's parameter for the threshold (<malloc.h>); setting it ends glibc's adjustment.
M_MMAP_THRESHOLD = -3
#: Blocks from this size up are mapped on their own: far above what a call allocates in
#: Python, far below a password check's memory.
LARGE_BLOCK = 1 << 20


def map_large_blocks(threshold: int = LARGE_BLOCK) -> bool:
    """Fix the C library's mmap threshold; False where it is not glibc's (nothing changes)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(M_MMAP_THRESHOLD, threshold) == 1
