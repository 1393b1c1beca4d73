"""Named defaults, in one place. Everything tunable lives here."""

from __future__ import annotations

import os

# Parallel blob transfers. Every byte is hashed in this process (and once more for the part checksums on
# export), so beyond two streams per core threads only queue for the GIL and the cores: measured on 2
# cores over loopback, 1.1 GB exported in 2.9 s with 4 threads, 3.3 s with 8 and 3.8 s with 16. Four
# streams still fill a high-latency link; raise -j for many small blobs far away.
JOBS = max(4, min(8, 2 * (os.cpu_count() or 2)))
# Requests that wait on the network rather than the CPU (manifests, HEADs, mounts, tags, blobs below
# SMALL_BLOB) run this many times -j at once: measured through a 50 ms round-trip proxy, exporting 32
# artifacts (131 blobs, 40 MB) took 2.3 s with everything at 4 and 1.1 s at 16.
LATENCY_JOBS_PER_JOB = 4
SMALL_BLOB = 1 << 20                  # blobs below this are latency-bound: they go with the requests above


def latency_jobs(jobs: int) -> int:
    """How many requests that only wait on round trips run at once, for -j `jobs`."""
    return max(1, jobs) * LATENCY_JOBS_PER_JOB

HASHER_CHILD_MIN = 64 << 20          # an export's part checksum goes to a child process from here on
CHUNK_SIZE = 1 << 20                  # streaming read/write unit (1 MiB)
HTTP_READ_SIZE = 1 << 20              # socket read size for HTTP/1.1 bodies (httpcore's default: 64 KiB)
# Bodies this big are read past h11 (mirror.http._direct_body); their connection is then closed, and over
# TLS far away a new one costs two round trips, so only where that is small against the body's own time.
HTTP_DIRECT_BODY_MIN = 32 << 20
UPLOAD_CHUNK_SIZE = 64 << 20          # PATCH size for chunked uploads of big blobs
MONOLITHIC_UPLOAD_MAX = 256 << 20     # blobs up to this size go up in one PUT
MAX_MANIFEST_BYTES = 4 << 20          # OCI distribution: manifests up to 4 MiB must be accepted
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 300.0
POOL_CONNECTIONS = 64                 # per origin; beyond it, a request waits for a free connection
RETRIES = 5                           # attempts after the first for retryable failures
BACKOFF_BASE = 0.5                    # seconds; doubled per attempt
BACKOFF_MAX = 30.0
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
TOKEN_DEFAULT_TTL = 60                # seconds, when a token response has no expires_in
ZSTD_LEVEL = 3
BUNDLE_NAME = "bundle"
BUNDLE_ENTRY_OVERHEAD = 1024          # bytes a blob costs in a bundle beyond its own: tar header, padding, frame
FAT32_MAX_FILE = (4 << 30) - 1        # the largest file FAT32 holds; `--split-size 4G` means this
BUNDLE_FORMAT_VERSION = 1
USER_AGENT = "airgap-mirror/0.1"

DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "https://registry-1.docker.io"
