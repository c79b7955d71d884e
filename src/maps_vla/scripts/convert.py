"""`maps-vla convert SRC DST --to v3.0`: rewrite a LeRobot dataset as codebase v3.0 or v2.1 (no re-encoding)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ['add_arguments', 'run']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('source', help='dataset folder (LeRobot v2.1 or v3.0)')
    parser.add_argument('destination', help='new dataset folder (must not exist or be empty)')
    parser.add_argument('--to', dest='version', default=None, choices=('v3.0', 'v2.1'),
                        help='codebase version to write (default: the other one than the source)')
    parser.add_argument('--data-files-size-in-mb', type=int, default=100, help='v3.0: data file size limit')
    parser.add_argument('--video-files-size-in-mb', type=int, default=200, help='v3.0: mp4 file size limit')


def run(args: argparse.Namespace) -> int:
    from maps_vla.data.convert import convert_dataset
    from maps_vla.data.layout import V21, V30, read_info

    try:
        version = args.version or (V21 if read_info(Path(args.source))['codebase_version']
                                   == V30 else V30)
        report = convert_dataset(args.source, args.destination, version,
                                 data_files_size_in_mb=args.data_files_size_in_mb,
                                 video_files_size_in_mb=args.video_files_size_in_mb)
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError, OSError) as exc:
        print(f'maps-vla convert: error: {exc}', file=sys.stderr)
        return 1
    print(report.summary())
    return 0
