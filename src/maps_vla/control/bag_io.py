"""Reading and writing real ROS 2 bags (sqlite3 and MCAP) with `rosbags`, no ROS installation needed.

Messages come back as rosbags dataclasses, which `msg_conversion` reads like rclpy messages. Any failure while
opening or reading a bag (missing metadata, a truncated or corrupt file, undecodable data) becomes one `BagError`
that names the bag.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rosbags.interfaces import (MessageDefinitionFormat, Qos, QosDurability, QosHistory, QosLiveliness,
                               QosReliability, QosTime)
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

__all__ = ['BagError', 'BagMessage', 'TopicInfo', 'DISTROS', 'make_typestore', 'bag_topics', 'read_messages',
           'BagWriter', 'qos_profile']

logger = logging.getLogger(__name__)

DISTROS = {'jazzy': Stores.ROS2_JAZZY, 'humble': Stores.ROS2_HUMBLE}
_STORAGES = {'sqlite3': StoragePlugin.SQLITE3, 'mcap': StoragePlugin.MCAP}
# rosbag2 metadata version written per distro: Jazzy writes 9; Humble writes 5, which rosbags cannot write, and 8 is
# the oldest it can (whether Humble's own tools read it is untested here).
_VERSIONS = {'jazzy': 9, 'humble': 8}
_IDL_SEPARATOR = '=' * 80 + '\n'


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
        raise BagError(f'Cannot open bag {str(path)!r}: {type(exc).__name__}: {exc}') from exc


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

    Raises:
        FileNotFoundError: no such path.
        BagError: the bag cannot be opened, or a message cannot be read or deserialized (truncated/corrupt).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f'Bag {str(path)!r} does not exist')
    typestore = typestore or make_typestore()
    where = 'opening'
    try:
        with Reader(path) as reader:
            connections = reader.connections
            asked: dict[str, str] = {}
            if topics is not None:
                asked = {t.strip('/'): t for t in topics}
                missing = set(asked) - {c.topic.strip('/') for c in connections}
                if missing:
                    logger.warning('bag %s has no topics %s', path, sorted(asked[m] for m in missing))
                connections = [c for c in connections if c.topic.strip('/') in asked]
                if not connections:
                    return
            _register_missing(typestore, connections)
            where = 'reading'
            for conn, timestamp, raw in reader.messages(connections=connections):
                where = f'deserializing {conn.topic} at {timestamp} ns'
                msg = typestore.deserialize_cdr(raw, conn.msgtype)
                yield BagMessage(asked.get(conn.topic.strip('/'), conn.topic), conn.msgtype, int(timestamp), msg)
                where = 'reading'
    except Exception as exc:  # rosbags, sqlite3 and mcap raise many types for damaged files
        raise BagError(f'Bag {str(path)!r} is unreadable ({where}): {type(exc).__name__}: {exc}') from exc


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
