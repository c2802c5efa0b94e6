"""The running gate notices a new gallery file (an admin page or ``edgeface people`` replaced it atomically) and
reloads it without a SIGHUP; a damaged new file is refused once and the last good gallery stays."""

from __future__ import annotations

import os
import threading

import cv2
import pytest
from gatekit import background, enroll, make_bundle, wait_for, write_config
from gpiozero.pins.mock import MockFactory

from edgeface.device.daemon import build_daemon


@pytest.mark.slow
def test_gate_reloads_a_new_gallery_version_and_keeps_the_old_on_a_bad_one(tmp_path, orl_dir, reference_onnx,
                                                                          detector):
    bundle = make_bundle(tmp_path / "bundle", reference_onnx, 0.40)
    gallery = tmp_path / "people.gallery"
    enroll(gallery, bundle, detector, {p: sorted((orl_dir / p).iterdir())[0] for p in ("s1", "s2")})
    wall = tmp_path / "wall.avi"  # 30 s of an empty wall, replayed in real time
    writer = cv2.VideoWriter(str(wall), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    for _ in range(300):
        writer.write(background(1))
    writer.release()
    cfg = write_config(tmp_path / "gate.toml", bundle, gallery, wall, detector.model_path,
                       '[relay]\nbackend = "mock"\n[policy]\nmax_fps = 2.0\n'
                       f'[audit]\npath = "{tmp_path / "audit.db"}"\n')
    gate = build_daemon(cfg, pin_factory=MockFactory(), log_out=None)
    thread = threading.Thread(target=gate.run, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: gate.ready, 60)
        assert len(gate.runtime.gallery) == 2
        from edgeface.device.admin.store import change_gallery

        change_gallery(gallery, lambda g: g.remove("s2"))
        assert wait_for(lambda: any(e.kind == "reloaded" for e in gate.events), 15)
        assert [p.name for p in gate.runtime.gallery.people] == ["s1"]

        damaged = tmp_path / "damaged.gallery"  # a damaged copy moved into place: refused, the last good one kept
        damaged.write_bytes(gallery.read_bytes()[:-5])
        os.replace(damaged, gallery)
        assert wait_for(lambda: any(e.kind == "reload_failed" for e in gate.events), 15)
        assert [p.name for p in gate.runtime.gallery.people] == ["s1"]
        failed = [e for e in gate.events if e.kind == "reload_failed"]
        assert "truncated" in failed[0].detail
        threading.Event().wait(2.5)  # one version, one attempt: no reload loop on the same bad file
        assert len([e for e in gate.events if e.kind == "reload_failed"]) == 1
    finally:
        gate.request_stop("test over")
        thread.join(20)
    assert not gate.relay.pin.state


def test_two_quick_replacements_are_still_a_new_version(tmp_path):
    """ext4 hands the freed inode to the next new file: after two atomic replacements the gallery can have its
    first inode again (here the inodes alternate between two numbers). Two removals between two looks of the
    gate must still read as a new version, or neither takes effect."""
    from edgeface.device.admin.store import change_gallery
    from edgeface.device.gate import gallery_files_version
    from edgeface.gallery import Gallery

    gallery = tmp_path / "people.gallery"
    g = Gallery.new("f" * 64, 4)
    for name in ("a", "b", "c"):
        g.add(name, [[1.0, 0.0, 0.0, 0.0]])
    g.save(gallery)
    seen = gallery_files_version(gallery)
    inodes = {os.stat(gallery).st_ino}
    for name in ("a", "b"):
        change_gallery(gallery, lambda g, n=name: g.remove(n))
        inodes.add(os.stat(gallery).st_ino)
    assert gallery_files_version(gallery) != seen, f"inodes seen: {sorted(inodes)}"
    assert [p.name for p in Gallery.load(gallery).people] == ["c"]
