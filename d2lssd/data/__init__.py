"""Data sets: checksummed downloads, the banana and Penn-Fudan data (real or generated).

``d2lssd.data.download`` fetches and extracts archives safely (its function
``download`` is reached as ``d2lssd.data.download.download``: re-exporting it
here would hide the module of the same name);
``d2lssd.data.bananas`` reads d2l's banana detection data and, where it cannot
be downloaded, generates a look-alike offline; ``d2lssd.data.pennfudan`` does
the same for the Penn-Fudan pedestrians (instance masks, a seeded 120/50 split);
``d2lssd.data.common`` holds what both share (:class:`DataSource`, the
download-or-generate policy, the atomic generated folder and its marker, the
background photos).
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
from .pennfudan import (
    PENNFUDAN_CLASSES,
    PENNFUDAN_GENERATOR_VERSION,
    PENNFUDAN_MD5,
    PENNFUDAN_URL,
    PennFudanDataset,
    PennFudanRecord,
    collate_ssd,
    download_pennfudan,
    format_annotation,
    generate_pennfudan,
    load_data_pennfudan,
    obtain_pennfudan,
    parse_annotation,
    read_pennfudan,
    split_pennfudan,
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
    "PENNFUDAN_CLASSES", "PENNFUDAN_GENERATOR_VERSION", "PENNFUDAN_MD5", "PENNFUDAN_URL",
    "PennFudanDataset", "PennFudanRecord", "collate_ssd", "download_pennfudan", "format_annotation",
    "generate_pennfudan", "load_data_pennfudan", "obtain_pennfudan", "parse_annotation",
    "read_pennfudan", "split_pennfudan",
    "DATA_HUB", "DATA_URL", "DownloadError", "cache_dir", "download_extract", "extract", "sha1sum",
]
