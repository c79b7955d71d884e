"""Reading and writing real ROS 2 bags (sqlite3 and MCAP) with `rosbags`, no ROS installation needed.

Messages come back as rosbags dataclasses, which `msg_conversion` reads like rclpy messages. Any failure while
opening or reading a bag (missing metadata, a truncated or corrupt file, undecodable data) becomes one `BagError`
that names the bag.

Truncated bags (a recorder killed, a copy cut short): an MCAP file is read up to its last complete record, with a
warning saying how many bytes and messages that was (rosbags needs the summary at the end of the file, so the
prefix is scanned record by record here). SQLite cannot open a file whose pages are cut off, so a truncated .db3 is
a `BagError` that says how to repair it.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rosbags.interfaces import (MessageDefinitionFormat, Qos, QosDurability, QosHistory, QosLiveliness,
                               QosReliability, QosTime)
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import McapReader
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

__all__ = ['BagError', 'BagMessage', 'TopicInfo', 'DISTROS', 'make_typestore', 'bag_topics', 'read_messages',
           'require_topics', 'BagWriter', 'qos_profile']

logger = logging.getLogger(__name__)

DISTROS = {'jazzy': Stores.ROS2_JAZZY, 'humble': Stores.ROS2_HUMBLE}
_STORAGES = {'sqlite3': StoragePlugin.SQLITE3, 'mcap': StoragePlugin.MCAP}
# rosbag2 metadata version written per distro: Jazzy writes 9; Humble writes 5, which rosbags cannot write, and 8 is
# the oldest it can (whether Humble's own tools read it is untested here).
_VERSIONS = {'jazzy': 9, 'humble': 8}
_IDL_SEPARATOR = '=' * 80 + '\n'
_MCAP_MAGIC = b'\x89MCAP0\r\n'
_IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')


class BagError(RuntimeError):
    """A bag could not be opened, read or written; the message names the bag."""


@dataclasses.dataclass(frozen=True)
class BagMessage:
    """One deserialized message."""

    topic: str
    msgtype: str  # e.g. 'sensor_msgs/msg/Image'
    timestamp_ns: int  # the bag's receive time
    msg: Any  # a rosbags dataclass

    @property
    def time(self) -> float:
        """The receive time in seconds."""
        return self.timestamp_ns * 1e-9


@dataclasses.dataclass(frozen=True)
class TopicInfo:
    msgtype: str
    count: int


def make_typestore(distro: str = 'jazzy') -> Typestore:
    """A fresh rosbags typestore of 'jazzy' or 'humble' message definitions."""
    if distro not in DISTROS:
        raise ValueError(f'Unknown ROS distro {distro!r}; use one of {sorted(DISTROS)}')
    return get_typestore(DISTROS[distro])


def qos_profile(kind: str = 'reliable') -> Qos:
    """Offered QoS for a topic's metadata: 'reliable' (keep last 10) or 'sensor_data' (best effort, keep last 5)."""
    if kind not in ('reliable', 'sensor_data'):
        raise ValueError(f"QoS kind must be 'reliable' or 'sensor_data', got {kind!r}")
    unset = QosTime(sec=0, nsec=0)  # 0 = the RMW default (infinite)
    return Qos(history=QosHistory.KEEP_LAST, depth=10 if kind == 'reliable' else 5,
               reliability=QosReliability.RELIABLE if kind == 'reliable' else QosReliability.BEST_EFFORT,
               durability=QosDurability.VOLATILE, deadline=unset, lifespan=unset,
               liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=unset,
               avoid_ros_namespace_conventions=False)


def _register_missing(typestore: Typestore, connections: Iterable[Any]) -> None:
    """Add message types the typestore lacks from the definitions stored in the bag."""
    types: dict[str, Any] = {}
    for conn in connections:
        fmt, data = conn.msgdef.format, conn.msgdef.data
        if conn.msgtype in typestore.types or fmt == MessageDefinitionFormat.NONE:
            continue
        if fmt == MessageDefinitionFormat.MSG:
            types.update(get_types_from_msg(data, conn.msgtype))
        elif data.startswith(_IDL_SEPARATOR + 'IDL: '):  # several IDL files, each after a separator line
            for part in data.split(_IDL_SEPARATOR)[1:]:
                types.update(get_types_from_idl(part.split('\n', 1)[1]))
        else:
            types.update(get_types_from_idl(data))
    if types:
        typestore.register(types)


def bag_topics(path: str | Path) -> dict[str, TopicInfo]:
    """Topic -> (message type, message count) of a bag.

    Raises:
        FileNotFoundError: no such path.
        BagError: the bag cannot be opened.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f'Bag {str(path)!r} does not exist')
    try:
        with Reader(path) as reader:
            return {topic: TopicInfo(info.msgtype or '', info.msgcount) for topic, info in reader.topics.items()}
    except Exception as exc:  # rosbags, sqlite3 and mcap raise many types for damaged files
        raise BagError(f'Cannot open bag {str(path)!r}: {type(exc).__name__}: {exc}{_repair_hint(path)}') from exc


class _Spliced(io.RawIOBase):
    """A read-only stream: the first `cut` bytes of `file`, then `extra` (records salvaged from a cut-off chunk)."""

    def __init__(self, file: Any, cut: int, extra: bytes) -> None:
        super().__init__()
        self._file, self._cut, self._extra, self._pos = file, cut, extra, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._cut + len(self._extra)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        end = self._cut + len(self._extra)
        stop = end if size is None or size < 0 else min(end, self._pos + size)
        out = b''
        if self._pos < self._cut:
            self._file.seek(self._pos)
            out = self._file.read(min(stop, self._cut) - self._pos)
        if stop > self._cut:
            out += self._extra[max(self._pos, self._cut) - self._cut:stop - self._cut]
        self._pos = stop
        return out

    def close(self) -> None:
        self._file.close()
        super().close()


def _records(data: bytes, start: int) -> tuple[list[tuple[int, int]], int]:
    """(start, end) of the complete MCAP records in data[start:], and where the first incomplete one starts."""
    out, pos = [], start
    while pos + 9 <= len(data):
        end = pos + 9 + int.from_bytes(data[pos + 1:pos + 9], 'little')
        if end > len(data):
            break
        out.append((pos, end))
        pos = end
    return out, pos


class _McapPrefixReader(McapReader):
    """rosbags' MCAP reader on the readable prefix of a truncated file (no summary, no footer).

    The complete top-level records are read from the file; the complete records inside a cut-off uncompressed
    chunk are appended as top-level records (MCAP allows messages, schemas and channels outside chunks).
    """

    def _open(self) -> None:
        bio = self.bio
        assert bio is not None
        if bio.read(8) != _MCAP_MAGIC:
            raise BagError(f'{str(self.path)!r} is not an MCAP file (bad magic)')
        size = bio.seek(0, 2)
        pos, self.data_start = 8, 0
        while pos + 9 <= size:  # every MCAP record is an opcode, a uint64 length and that many bytes
            bio.seek(pos)
            op_, length = bio.read(1)[0], int.from_bytes(bio.read(8), 'little')
            if pos + 9 + length > size:
                break
            pos += 9 + length
            if op_ == 0x01:  # the header: data records follow it
                self.data_start = pos
        if not self.data_start:
            raise BagError(f'{str(self.path)!r} is cut off before the end of its MCAP header')
        extra, salvaged = b'', 0
        bio.seek(pos)
        tail = bio.read()
        if tail[:1] == b'\x06' and len(tail) >= 9 + 32:  # a cut-off chunk: salvage its complete inner records
            n = int.from_bytes(tail[9 + 28:9 + 32], 'little')
            compression = tail[9 + 32:9 + 32 + n]
            first = 9 + 32 + n + 8
            if compression == b'' and len(tail) >= first:
                spans, salvaged = _records(tail, first)
                extra = b''.join(tail[a:b] for a, b in spans)
        self.bio = _Spliced(bio, pos, extra)
        self.data_end = pos + len(extra)
        self.bytes_read, self.bytes_total = pos + (salvaged if extra else 0), size
        self.meta_scan()
        self.connections = [c._replace(msgcount=self.statistics.channel_message_counts.get(c.id, 0))
                            for c in self.connections]


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', path.name)]


def _repair_hint(path: Path) -> str:
    files = [path] if path.is_file() else sorted(path.glob('*.db3')) + sorted(path.glob('*.mcap'))
    if any(f.suffix == '.db3' for f in files):
        db3 = next(f for f in files if f.suffix == '.db3')
        return (f'; if the recording was cut short, repair it with `sqlite3 {db3} .recover | sqlite3 fixed.db3`, put '
                f'fixed.db3 in a new folder and run `ros2 bag reindex <folder> sqlite3` there')
    if files:
        return f'; if the recording was cut short, repair it with `mcap recover {files[0]} -o fixed.mcap`'
    return ''


def _read_mcap_prefix(path: Path, topics: Iterable[str] | None, typestore: Typestore,
                      cause: Exception) -> Iterator[BagMessage]:
    """The messages of the complete records of (possibly truncated) MCAP files, in file order, with a warning."""
    files = [path] if path.is_file() else sorted(path.glob('*.mcap'), key=_natural_key)
    if not files:
        raise cause
    count, notes = 0, []
    for file in files:
        reader = _McapPrefixReader(file)
        reader.open()
        try:
            connections = _select(reader.connections, topics, path)
            if connections is None:
                continue
            _register_missing(typestore, connections)
            asked = _asked(topics)
            for conn, timestamp, raw in reader.messages_scan(connections):
                msg = typestore.deserialize_cdr(raw, conn.msgtype)
                count += 1
                yield BagMessage(asked.get(conn.topic.strip('/'), conn.topic), conn.msgtype, int(timestamp), msg)
            if reader.bytes_read < reader.bytes_total:
                notes.append(f'{file.name}: {reader.bytes_read} of {reader.bytes_total} bytes '
                             f'({100.0 * reader.bytes_read / reader.bytes_total:.1f}%)')
        finally:
            reader.close()
    logger.warning('bag %s is truncated (%s: %s); read the readable prefix only: %s, %d messages%s', path,
                   type(cause).__name__, cause, '; '.join(notes) or 'every file complete', count, _repair_hint(path))


def _asked(topics: Iterable[str] | None) -> dict[str, str]:
    return {} if topics is None else {t.strip('/'): t for t in topics}


def _select(connections: list[Any], topics: Iterable[str] | None, path: Path) -> list[Any] | None:
    """The connections of `topics` (all when None), or None when the bag has none of them."""
    if topics is None:
        return connections
    asked = _asked(topics)
    missing = set(asked) - {c.topic.strip('/') for c in connections}
    if missing:
        logger.warning('bag %s has no topics %s', path, sorted(asked[m] for m in missing))
    connections = [c for c in connections if c.topic.strip('/') in asked]
    return connections or None


def require_topics(path: str | Path, topics: Iterable[str], hint: str = '') -> dict[str, TopicInfo]:
    """The bag's topics, after checking that it has every one of `topics` (with or without a leading '/').

    Raises:
        FileNotFoundError: no such path.
        BagError: a topic is missing (the message lists the bag's image topics and `hint`, how to map them), or the
            bag cannot be opened.
    """
    available = _topics_or_prefix(Path(path))
    have = {t.strip('/') for t in available}
    missing = [t for t in topics if t.strip('/') not in have]
    if missing:
        images = sorted(t for t, info in available.items() if info.msgtype in _IMAGE_TYPES)
        raise BagError(f'Bag {str(path)!r} has no topic {", ".join(repr(t) for t in missing)}; its image topics: '
                       f'{images or "none"}{f"; {hint}" if hint else ""} (all topics: {sorted(available)})')
    return available


def _topics_or_prefix(path: Path) -> dict[str, TopicInfo]:
    try:
        return bag_topics(path)
    except BagError as exc:
        files = [path] if path.suffix == '.mcap' else sorted(path.glob('*.mcap')) if path.is_dir() else []
        if not files:
            raise
        out: dict[str, TopicInfo] = {}
        for file in files:
            reader = _McapPrefixReader(file)
            try:
                reader.open()
            except Exception:
                raise exc from None
            for c in reader.connections:
                old = out.get(c.topic)
                out[c.topic] = TopicInfo(c.msgtype, c.msgcount + (old.count if old else 0))
            reader.close()
        return out


def read_messages(path: str | Path, topics: Iterable[str] | None = None,
                  typestore: Typestore | None = None) -> Iterator[BagMessage]:
    """Deserialized messages of `topics` (all when None) in receive-time order.

    rosbags orders the messages of each storage file; the files of a split bag are read one after another, which
    is time order for bags rosbag2 recorded.

    Args:
        path: a bag directory (with metadata.yaml) or a single .db3 / .mcap file.
        topics: topics to read; one missing from the bag is logged and skipped. Names match with or without the
            leading '/' (`ros2 bag record` stores absolute names), and messages carry the name asked for.
        typestore: message definitions; default Jazzy. Types it lacks are taken from the bag.

    A truncated MCAP bag yields the messages of its complete records, with a warning (see the module docstring).

    Raises:
        FileNotFoundError: no such path.
        BagError: the bag cannot be opened, or a message cannot be read or deserialized (truncated/corrupt); the
            message says how to repair a truncated bag.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f'Bag {str(path)!r} does not exist')
    typestore = typestore or make_typestore()
    topics = None if topics is None else list(topics)
    where = 'opening'
    try:
        try:
            reader = Reader(path)
            reader.open()
        except Exception as exc:
            if 'end magic' not in str(exc):
                raise
            where = 'reading the readable prefix'
            yield from _read_mcap_prefix(path, topics, typestore, exc)
            return
        try:
            connections = _select(reader.connections, topics, path)
            if connections is None:
                return
            asked = _asked(topics)
            _register_missing(typestore, connections)
            where = 'reading'
            for conn, timestamp, raw in reader.messages(connections=connections):
                where = f'deserializing {conn.topic} at {timestamp} ns'
                msg = typestore.deserialize_cdr(raw, conn.msgtype)
                yield BagMessage(asked.get(conn.topic.strip('/'), conn.topic), conn.msgtype, int(timestamp), msg)
                where = 'reading'
        finally:
            reader.close()
    except BagError:
        raise
    except Exception as exc:  # rosbags, sqlite3 and mcap raise many types for damaged files
        raise BagError(f'Bag {str(path)!r} is unreadable ({where}): {type(exc).__name__}: {exc}'
                       f'{_repair_hint(path)}') from exc


class BagWriter:
    """Writes a new ROS 2 bag; use as a context manager.

    Args:
        path: the bag directory to create (must not exist).
        storage: 'sqlite3' or 'mcap' (Jazzy's default).
        distro: 'jazzy' (bag version 9) or 'humble' (version 8) message definitions.
        typestore: message definitions; default that of `distro`.

    Raises:
        ValueError: unknown storage or distro.
        FileExistsError: `path` exists (bags are never overwritten).
    """

    def __init__(self, path: str | Path, storage: str = 'sqlite3', distro: str = 'jazzy',
                 typestore: Typestore | None = None) -> None:
        if storage not in _STORAGES:
            raise ValueError(f'Unknown bag storage {storage!r}; use one of {sorted(_STORAGES)}')
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f'Bag {str(self.path)!r} already exists; bags are never overwritten')
        self.typestore = typestore or make_typestore(distro)
        self._writer = Writer(self.path, version=_VERSIONS[distro], storage_plugin=_STORAGES[storage])
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self._open = False

    @property
    def types(self) -> Typestore:
        """The typestore to build messages with (pass it to msg_conversion's `types` arguments)."""
        return self.typestore

    def open(self) -> BagWriter:
        try:
            self._writer.open()
        except Exception as exc:
            raise BagError(f'Cannot create bag {str(self.path)!r}: {exc}') from exc
        self._open = True
        return self

    def add_topic(self, topic: str, msgtype: str, qos: str = 'reliable') -> None:
        """Declare a topic with its type and offered QoS ('reliable' or 'sensor_data')."""
        if topic in self._connections:
            raise ValueError(f'Topic {topic!r} is already declared in bag {str(self.path)!r}')
        if msgtype not in self.typestore.types:
            raise ValueError(f'Message type {msgtype!r} is not in the typestore')
        self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=self.typestore,
                                                               offered_qos_profiles=[qos_profile(qos)])
        self.counts[topic] = 0

    def write(self, topic: str, msg: Any, timestamp_ns: int) -> None:
        """Serialize and write `msg` on a declared topic at receive time `timestamp_ns`.

        Raises:
            KeyError: the topic was not declared with add_topic.
        """
        conn = self._connections.get(topic)
        if conn is None:
            raise KeyError(f'Topic {topic!r} was not declared; call add_topic first')
        self._writer.write(conn, int(timestamp_ns), self.typestore.serialize_cdr(msg, conn.msgtype))
        self.counts[topic] += 1

    def close(self) -> None:
        """Finish the bag (writes metadata.yaml)."""
        if self._open:
            self._open = False
            self._writer.close()

    def __enter__(self) -> BagWriter:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
