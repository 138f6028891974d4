"""Data sets: checksummed downloads, the banana detection data (real or generated).

``d2lssd.data.download`` fetches and extracts archives safely (its function
``download`` is reached as ``d2lssd.data.download.download``: re-exporting it
here would hide the module of the same name);
``d2lssd.data.bananas`` reads d2l's banana detection data and, where it cannot
be downloaded, generates a look-alike offline.
"""

from .bananas import (
    CSV_HEADER,
    GENERATOR_VERSION,
    BananasDataset,
    DataSource,
    generate_bananas,
    load_data_bananas,
    read_data_bananas,
)
from .download import (
    DATA_HUB,
    DATA_URL,
    DownloadError,
    cache_dir,
    download_extract,
    extract,
    sha1sum,
)

__all__ = [
    "CSV_HEADER", "GENERATOR_VERSION", "BananasDataset", "DataSource",
    "generate_bananas", "load_data_bananas", "read_data_bananas",
    "DATA_HUB", "DATA_URL", "DownloadError", "cache_dir", "download_extract", "extract", "sha1sum",
]
