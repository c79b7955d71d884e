import cv2
import numpy as np
import pytest

from maps_vla.control.camera import CameraConfig, CameraIngest, VideoCaptureSource, preprocess_frame


def _frame(h, w):
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([x % 256, y % 256, (x + y) % 256]).astype(np.uint8)


def test_center_crop_then_inter_area_resize():
    frame = _frame(480, 640)
    out = preprocess_frame(frame, 224, 224)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    expected = cv2.resize(frame[:, 80:560], (224, 224), interpolation=cv2.INTER_AREA)
    assert np.array_equal(out, expected)
    tall = _frame(640, 480)
    assert np.array_equal(preprocess_frame(tall, 224, 224),
                          cv2.resize(tall[80:560], (224, 224), interpolation=cv2.INTER_AREA))
    wide_target = preprocess_frame(frame, 320, 160)  # 2:1 target crops rows of a 4:3 frame
    assert np.array_equal(wide_target, cv2.resize(frame[80:400], (320, 160), interpolation=cv2.INTER_AREA))
    stretched = preprocess_frame(frame, 224, 224, center_crop=False)
    assert np.array_equal(stretched, cv2.resize(frame, (224, 224), interpolation=cv2.INTER_AREA))


def test_frame_kinds_and_rejections():
    grey = np.full((10, 10), 7, np.uint8)
    assert np.array_equal(preprocess_frame(grey, 4, 4), np.full((4, 4, 3), 7, np.uint8))
    rgba = np.dstack([_frame(8, 8), np.zeros((8, 8), np.uint8)])
    assert np.array_equal(preprocess_frame(rgba, 8, 8), _frame(8, 8))
    with pytest.raises(TypeError, match='uint8'):
        preprocess_frame(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r'got \(8, 8, 2\)'):
        preprocess_frame(np.zeros((8, 8, 2), np.uint8))


def test_ingest_keeps_stamp_per_camera():
    cams = CameraIngest(CameraConfig(names=('wrist', 'third_person'), width=32, height=24))
    out = cams.on_image('wrist', _frame(48, 64), 12.25)
    assert out.image.shape == (24, 32, 3) and out.stamp == 12.25
    assert cams.latest('wrist') is out and cams.latest('third_person') is None
    with pytest.raises(ValueError, match="Unknown camera 'front'"):
        cams.on_image('front', _frame(4, 4), 0.0)
    with pytest.raises(ValueError, match='stamp must be finite'):
        cams.on_image('wrist', _frame(4, 4), float('nan'))


def test_camera_config_validation_and_topics():
    cfg = CameraConfig(names=('a', 'b'), topics=('/x/image', ''), compressed=True)
    assert cfg.topic('a') == '/x/image/compressed'
    assert CameraConfig().topic('third_person') == 'camera/third_person/image_raw'
    with pytest.raises(ValueError, match='1 or 2 camera names'):
        CameraConfig(names=('a', 'b', 'c'))
    with pytest.raises(ValueError, match='one topic per name'):
        CameraConfig(names=('a',), topics=('x', 'y'))
    with pytest.raises(ValueError, match='width/height must be > 0'):
        CameraConfig(width=0)


def test_video_capture_source_reads_a_file(tmp_path):
    path = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (64, 48))
    assert writer.isOpened()
    colours = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 255)]  # BGR: red, green, blue, white
    for bgr in colours:
        writer.write(np.full((48, 64, 3), bgr, np.uint8))
    writer.release()
    with VideoCaptureSource(path) as source:
        frames = list(source)
    assert len(frames) == 4
    assert [f.shape for f, _ in frames] == [(48, 64, 3)] * 4
    assert [t for _, t in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3], abs=1e-3)
    assert frames[0][0].mean(axis=(0, 1)) == pytest.approx([255, 0, 0], abs=10)  # delivered as RGB
    assert frames[2][0].mean(axis=(0, 1)) == pytest.approx([0, 0, 255], abs=10)
    with pytest.raises(FileNotFoundError, match='missing.avi'):
        VideoCaptureSource(tmp_path / 'missing.avi')
    (tmp_path / 'junk.avi').write_bytes(b'not a video')
    with pytest.raises(RuntimeError, match='cannot open video source'):
        VideoCaptureSource(tmp_path / 'junk.avi')
