"""The Quickstart's ``door.avi`` without ../shared's demo: ``edgeface scene compose`` makes one from a folder of
photos, ``edgeface camera record`` records one from the configured camera (here a real VideoCapture over a file),
and ``gate --simulate`` lets in the enrolled person on the composed clip and nobody else."""

from __future__ import annotations

import json

import cv2
import pytest
from gatekit import Appearance, compose_video, enroll, make_bundle, write_config

from edgeface.cli import main


def _link(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(src)


@pytest.fixture
def folders(tmp_path, orl_dir):
    staff, visitors = tmp_path / "door-photos", tmp_path / "visitors"
    for i in (3, 4):  # s1's door photos: not the one enrolled (photo 0)
        _link(sorted((orl_dir / "s1").iterdir())[i], staff / "Ada Lovelace" / f"{i}.png")
    _link(sorted((orl_dir / "s9").iterdir())[2], visitors / "s9.png")
    _link(sorted((orl_dir / "s17").iterdir())[5], visitors / "s17" / "a.png")
    return staff, visitors


def test_scene_compose_writes_a_clip_the_door_replays(tmp_path, folders, orl_dir, reference_onnx, detector,
                                                      yunet_path, capsys, monkeypatch):
    monkeypatch.setenv("EDGEFACE_YUNET", str(yunet_path))  # the config-free simulation's detector
    staff, visitors = folders
    clip = tmp_path / "door.avi"
    assert main(["scene", "compose", "--photos", str(staff), "--strangers", str(visitors), "--out", str(clip)]) == 0
    out = capsys.readouterr().out
    timeline = json.loads((tmp_path / "door.avi.json").read_text())["appearances"]
    assert sorted((t["who"], t["stranger"]) for t in timeline) == [
        ("Ada Lovelace", False), ("s17", True), ("s9", True)]
    assert "stranger s9" in out and f"wrote {clip}: 3 appearance(s)" in out
    cap = cv2.VideoCapture(str(clip))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert frames == round(1.5 * 10) + 3 * (20 + 15)  # the wall, then 2 s of each person and 1.5 s of wall

    bundle = make_bundle(tmp_path / "bundle", reference_onnx, 0.40)
    gallery = tmp_path / "people.gallery"
    enroll(gallery, bundle, detector, {"Ada Lovelace": sorted((orl_dir / "s1").iterdir())[0]})
    assert main(["gate", "--simulate", str(clip), "--bundle", str(bundle), "--gallery", str(gallery)]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    unlocks = [e for e in events if e["event"] == "unlock"]
    ada = next(t for t in timeline if t["who"] == "Ada Lovelace")
    assert [e["person"] for e in unlocks] == ["Ada Lovelace"]
    assert ada["from_s"] <= unlocks[0]["t"] <= ada["to_s"] + 1.0


def test_scene_compose_refuses_what_it_cannot_make(tmp_path, folders, capsys):
    staff, _ = folders
    assert main(["scene", "compose", "--photos", str(staff), "--out", str(tmp_path / "door.mp4")]) == 1
    assert "MJPG .avi" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["scene", "compose", "--photos", str(tmp_path / "empty"), "--out", str(tmp_path / "d.avi")]) == 1
    assert "no photos" in capsys.readouterr().err and not (tmp_path / "d.avi").exists()


def test_camera_record_writes_what_the_configured_camera_delivers(tmp_path, orl_dir, reference_onnx, yunet_path,
                                                                  capsys):
    source = tmp_path / "camera.avi"  # the camera: a real VideoCapture over a file, paced at its frame rate
    compose_video(source, [Appearance("s1", sorted((orl_dir / "s1").iterdir())[1], 3.0, 260, (0.3, 0.3), (0.5, 0.4))],
                  fps=10.0, gap_s=0.5)
    config = write_config(tmp_path / "gate.toml", tmp_path / "bundle", tmp_path / "g", source, yunet_path)
    config.write_text(config.read_text().replace(f'source = "{source}"', f'source = "{source}"\nfps = 10.0'))
    out = tmp_path / "recorded.avi"
    assert main(["camera", "record", "--config", str(config), "--out", str(out), "--seconds", "1.5"]) == 0
    printed = capsys.readouterr().out
    cap = cv2.VideoCapture(str(out))
    n, ok = 0, True
    while ok:
        ok, frame = cap.read()
        n += ok
        if ok:
            assert frame.shape == (480, 640, 3)
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
    cap.release()
    assert 8 <= n <= 20, (n, printed)  # 1.5 s of a 10 fps camera
    assert f"wrote {out}: {n} frames" in printed and "gate --simulate" in printed

    bad = config.read_text().replace(f'source = "{source}"', f'source = "{tmp_path / "nothing.avi"}"')
    config.write_text(bad)
    assert main(["camera", "record", "--config", str(config), "--out", str(tmp_path / "none.avi"),
                 "--seconds", "1"]) == 1
    assert "Traceback" not in capsys.readouterr().err
