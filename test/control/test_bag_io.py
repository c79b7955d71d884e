import logging

import numpy as np
import pytest
import yaml
from rosbags.typesys import get_types_from_msg

from maps_vla.control import msg_conversion as mc
from maps_vla.control.bag_io import BagError, BagWriter, bag_topics, make_typestore, read_messages

STORAGES = ['sqlite3', 'mcap']


def _write_mixed(path, storage, distro='jazzy'):
    with BagWriter(path, storage=storage, distro=distro) as w:
        w.add_topic('image', 'sensor_msgs/msg/Image', 'sensor_data')
        w.add_topic('text', 'std_msgs/msg/String')
        # written out of time order on purpose: the reader returns receive-time order
        for i in (3, 0, 2, 1):
            w.write('image', mc.numpy_to_image(w.types, np.full((2, 3), i, np.uint8), 'mono8', stamp=i), i * 10**9)
            w.write('text', mc.str_to_string(w.types, f'm{i}'), i * 10**9 + 5)
    return path


@pytest.mark.parametrize('storage', STORAGES)
def test_roundtrip_in_time_order(tmp_path, storage):
    path = _write_mixed(tmp_path / 'bag', storage)
    assert {t: (i.msgtype, i.count) for t, i in bag_topics(path).items()} == {
        'image': ('sensor_msgs/msg/Image', 4), 'text': ('std_msgs/msg/String', 4)}
    msgs = list(read_messages(path))
    assert [m.timestamp_ns for m in msgs] == sorted(m.timestamp_ns for m in msgs)
    assert [m.topic for m in msgs[:2]] == ['image', 'text']
    images = [m for m in msgs if m.topic == 'image']
    assert [int(mc.image_to_numpy(m.msg)[0, 0]) for m in images] == [0, 1, 2, 3]
    assert [mc.stamp_of(m.msg) for m in images] == [0.0, 1.0, 2.0, 3.0] and images[2].time == 2.0
    only_text = list(read_messages(path, ['text']))
    assert [mc.string_to_str(m.msg) for m in only_text] == ['m0', 'm1', 'm2', 'm3']


@pytest.mark.parametrize('storage', STORAGES)
def test_metadata_has_types_and_qos(tmp_path, storage):
    path = _write_mixed(tmp_path / 'bag', storage)
    meta = yaml.safe_load((path / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert meta['version'] == 9 and meta['storage_identifier'] == storage and meta['message_count'] == 8
    topics = {t['topic_metadata']['name']: t['topic_metadata'] for t in meta['topics_with_message_count']}
    image_qos = topics['image']['offered_qos_profiles'][0]
    assert (image_qos['reliability'], image_qos['depth']) == ('best_effort', 5)
    assert topics['text']['offered_qos_profiles'][0]['reliability'] == 'reliable'
    assert topics['image']['type'] == 'sensor_msgs/msg/Image'
    assert topics['image']['type_description_hash'].startswith('RIHS01_')


def test_humble_bags_use_version_8(tmp_path):
    path = _write_mixed(tmp_path / 'bag', 'sqlite3', distro='humble')
    meta = yaml.safe_load((path / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert meta['version'] == 8
    assert len(list(read_messages(path, typestore=make_typestore('humble')))) == 8


def test_single_storage_file_can_be_read(tmp_path):
    path = _write_mixed(tmp_path / 'bag', 'mcap')
    assert len(list(read_messages(path / 'bag.mcap'))) == 8


def test_truncated_sqlite_bag_is_one_clear_error_with_the_repair_command(tmp_path):
    path = _write_mixed(tmp_path / 'bag', 'sqlite3')
    data_file = path / 'bag.db3'
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])
    with pytest.raises(BagError, match=str(path)) as info:
        list(read_messages(path))
    assert '.recover' in str(info.value) and 'ros2 bag reindex' in str(info.value)


def _write_long(path, n=300):
    with BagWriter(path, storage='mcap') as w:
        w.add_topic('image', 'sensor_msgs/msg/Image', 'sensor_data')
        w.add_topic('text', 'std_msgs/msg/String')
        for i in range(n):
            w.write('image', mc.numpy_to_image(w.types, np.full((8, 8), i % 256, np.uint8), 'mono8', stamp=i),
                    i * 10**9)
            w.write('text', mc.str_to_string(w.types, f'm{i}'), i * 10**9 + 5)
    return path


@pytest.mark.parametrize('keep', [0.6, 0.95, 0.999])
def test_truncated_mcap_bag_yields_its_readable_prefix_with_a_warning(tmp_path, caplog, keep):
    path = _write_long(tmp_path / 'bag')
    full = list(read_messages(path))
    data_file = path / 'bag.mcap'
    data = data_file.read_bytes()
    data_file.write_bytes(data[: int(len(data) * keep)])
    with caplog.at_level(logging.WARNING, logger='maps_vla.control.bag_io'):
        part = list(read_messages(path))
    assert 0 < len(part) <= len(full)
    assert [(m.topic, m.timestamp_ns) for m in part] == [(m.topic, m.timestamp_ns) for m in full[:len(part)]]
    assert mc.string_to_str(part[-1].msg if part[-1].topic == 'text' else part[-2].msg).startswith('m')
    if keep == 0.6:
        assert len(part) < len(full)  # the cut removed messages, and what is left is still read
        assert len(part) >= 0.5 * len(full)  # ... most of the prefix (the cut-off chunk's complete records too)
    text = caplog.text
    assert 'truncated' in text and 'mcap recover' in text and f'{len(part)} messages' in text
    only_text = list(read_messages(path, ['text']))
    assert [mc.string_to_str(m.msg) for m in only_text] == [f'm{i}' for i in range(len(only_text))]


def test_corrupt_metadata_and_missing_bag(tmp_path):
    path = _write_mixed(tmp_path / 'bag', 'sqlite3')
    (path / 'metadata.yaml').write_text('rosbag2_bagfile_information: [not, a, mapping')
    with pytest.raises(BagError, match=f"Cannot open bag '{path}'"):
        bag_topics(path)
    with pytest.raises(BagError, match=f"Bag '{path}' is unreadable"):
        list(read_messages(path))
    with pytest.raises(FileNotFoundError, match='nope'):
        list(read_messages(tmp_path / 'nope'))


def test_writer_errors(tmp_path):
    path = _write_mixed(tmp_path / 'bag', 'sqlite3')
    with pytest.raises(FileExistsError, match='never overwritten'):
        BagWriter(path)
    with pytest.raises(ValueError, match="Unknown bag storage 'zip'"):
        BagWriter(tmp_path / 'x', storage='zip')
    with BagWriter(tmp_path / 'y') as w:
        with pytest.raises(ValueError, match="'foo_msgs/msg/Bar' is not in the typestore"):
            w.add_topic('a', 'foo_msgs/msg/Bar')
        with pytest.raises(KeyError, match="'b' was not declared"):
            w.write('b', mc.str_to_string(w.types, 'x'), 0)


def test_types_missing_from_the_typestore_come_from_the_bag(tmp_path, caplog):
    store = make_typestore()
    store.register(get_types_from_msg('float64 speed\nstring label', 'my_msgs/msg/Speed'))
    with BagWriter(tmp_path / 'bag', typestore=store) as w:
        w.add_topic('speed', 'my_msgs/msg/Speed')
        w.write('speed', store.types['my_msgs/msg/Speed'](speed=1.5, label='fast'), 7)
    with caplog.at_level(logging.WARNING):
        msgs = list(read_messages(tmp_path / 'bag', ['speed', 'absent']))  # default Jazzy store lacks my_msgs
    assert (msgs[0].msg.speed, msgs[0].msg.label, msgs[0].timestamp_ns) == (1.5, 'fast', 7)
    assert "no topics ['absent']" in caplog.text


def test_absolute_topic_names_match_relative_requests(tmp_path):
    """`ros2 bag record` stores '/joint_states'; configs say 'joint_states': both spellings must meet."""
    ts = make_typestore()
    path = tmp_path / 'abs'
    with BagWriter(path) as w:
        w.add_topic('/instruction', 'std_msgs/msg/String')
        w.add_topic('/other', 'std_msgs/msg/String')
        w.write('/instruction', mc.str_to_string(ts, 'pick'), 1_000)
        w.write('/other', mc.str_to_string(ts, 'no'), 2_000)
    got = list(read_messages(path, ['instruction']))
    assert [(m.topic, m.msg.data) for m in got] == [('instruction', 'pick')]
    assert [m.topic for m in read_messages(path, ['/instruction'])] == ['/instruction']
