"""What a person's name may be (edgeface.names): one rule for the CLI (enroll, people rename), the gallery and the
admin page; `people list` and the log lines cannot be forged or carry terminal escapes, whatever a name holds;
an unknown name in `people remove` does not print everyone enrolled."""

from __future__ import annotations

import numpy as np
import pytest

from edgeface.cli import main
from edgeface.device.events import Event
from edgeface.gallery import Gallery, PersonNameError, check_name
from edgeface.names import MAX_NAME_CHARS, printable

#: every kind of name the attack used, and the invisible or line-breaking characters a log reader acts on
BAD = ["Ada\nBob   fake-id   1 embedding(s)  updated 2026-01-01", "Ada\rX", "Ada\x1b[31mred", "Ada\x00", "Ada\x0b",
       "Ada\x0c", "Ada\x85", "Ada\u2028x", "Ada\u2029", "\u202eadA", "A\u200bda", "x" * 10_000,
       "", "   "]
GOOD = ["Ada", "Ada Lovelace", "Zoë Ünal", "李小龍", "Ada-Marie O'Neil (contractor)", "Ada 🙂", "x" * MAX_NAME_CHARS]


def unit(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    e = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_the_name_rule():
    for name in BAD:
        with pytest.raises(PersonNameError) as err:
            check_name(name)
        assert "\n" not in str(err.value) and "\x1b" not in str(err.value) and len(str(err.value)) < 400
    for name in GOOD:
        assert check_name(name) == name
    assert check_name("  Ada \u00a0  Lovelace ") == "Ada Lovelace"  # spaces normalised, as enroll's file names are
    g = Gallery.new("f" * 64, 8)
    for name in BAD:
        with pytest.raises(PersonNameError):
            g.add(name, unit(1))
    p = g.add("Ada", unit(1))
    for name in BAD:
        with pytest.raises(PersonNameError):
            g.rename("Ada", name)
    assert p.name == "Ada"


@pytest.fixture
def gallery(tmp_path):
    g = Gallery.new("f" * 64, 8)
    g.add("Ada", unit(1, seed=1), person_id="aaaaaaaaaaaa")
    g.add("Bob", unit(1, seed=2), person_id="bbbbbbbbbbbb")
    path = tmp_path / "people.gallery"
    g.save(path)
    return path


def test_people_rename_refuses_a_forged_line_and_list_stays_one_line_per_person(gallery, capsys):
    before = gallery.read_bytes()
    forged = "Ada\nBob   fake-id   1 embedding(s)  updated 2026-01-01"
    assert main(["people", "--gallery", str(gallery), "rename", "Ada", forged]) == 1
    err = capsys.readouterr().err
    assert "not a valid name" in err and "control" in err and err.count("\n") == 1
    assert main(["people", "--gallery", str(gallery), "rename", "Ada", "A" * 10_000]) == 1
    assert "at most 100 characters" in capsys.readouterr().err
    assert main(["people", "--gallery", str(gallery), "rename", "Ada", "Ada\x1b[2J"]) == 1
    assert gallery.read_bytes() == before
    # a gallery written before the rule (or by hand) with such names: still one line per person, escaped
    g = Gallery.load(gallery)
    g.people[0].name = forged
    g.people[1].name = "Bob\x1b[31m\u2028\x85"
    g.save(gallery)
    assert main(["people", "list", "--gallery", str(gallery)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()  # str.splitlines also breaks at \x85 and \u2028
    assert len(lines) == 3, out
    assert "\x1b" not in out and "\\n" in lines[1] and "\\x1b" in lines[2]


def test_an_unknown_name_in_people_remove_does_not_list_everyone(tmp_path, capsys):
    g = Gallery.new("f" * 64, 8)
    for i in range(2000):
        g.add(f"Person {i:05d} of the big company", unit(1, seed=i))
    path = tmp_path / "big.gallery"
    g.save(path)
    assert main(["people", "--gallery", str(path), "remove", "Nobody\x1b[31m"]) == 1
    err = capsys.readouterr().err
    assert "no enrolled person is called 'Nobody\\x1b[31m'" in err and "2000 enrolled" in err
    assert len(err) < 500 and "\x1b" not in err
    assert main(["people", "--gallery", str(path), "remove", "Person 00007 of the big compan"]) == 1
    assert "did you mean 'Person 00007 of the big company'" in capsys.readouterr().err


def test_enroll_skips_files_whose_names_are_not_names(tmp_path, capsys):
    """The folder scan says why, with the file name escaped; nothing is enrolled (no model is even loaded)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "Ada\x1b[31m.jpg").write_bytes(b"x")
    (photos / ("B" * 150 + ".jpg")).write_bytes(b"x")
    rc = main(["enroll", "--bundle", str(tmp_path / "no-bundle"), "--photos", str(photos),
               "--gallery", str(tmp_path / "g.gallery")])
    cap = capsys.readouterr()
    assert rc == 1 and "no photos" in cap.err
    skipped = [line for line in cap.out.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 2 and all("not a usable name" in line for line in skipped), cap.out
    assert "\x1b" not in cap.out and "Ada\\x1b[31m.jpg" in cap.out


def test_log_lines_escape_every_control_and_invisible_character():
    nasty = "Ada\x1b[31m\x0b\x0c\x85\u2028\u2029\x00\t\r\n\u202e end"
    line = Event("granted", t=1.0, person=nasty, detail=nasty).log_line()
    assert len(line.splitlines()) == 1 and line.isprintable()
    for c in "\x1b\x0b\x0c\x85\u2028\u2029\x00\t\r\n\u202e":
        assert c not in line
    assert "\\x1b" in line and "\\u2028" in line and "\\x85" in line
    assert printable("plain Ada") == "plain Ada"


@pytest.mark.slow
def test_the_admin_page_refuses_names_that_are_not_names(tmp_path, reference_onnx, detector, orl_dir):
    pytest.importorskip("starlette")
    from adminkit import csrf_of, logged_in, make_door, photo

    door = make_door(tmp_path, reference_onnx, detector, orl_dir)
    c = logged_in(door["cfg"])
    data = photo(orl_dir, "s2", 0).read_bytes()
    before = door["gallery"].read_bytes()
    for name in ("Ada\nBob", "Ada\x1b[31m", "A" * 10_000, "Ada\u2028x", "Ada\x00x"):
        token = csrf_of(c.get("/people/add").text)
        r = c.post("/people/add", data={"csrf": token, "name": name}, files={"photo": ("a.png", data, "image/png")})
        assert r.status_code == 400 and "is not a valid name" in r.text, name
        token = csrf_of(c.get("/people/s1/rename").text)
        r = c.post("/people/s1/rename", data={"csrf": token, "name": name})
        assert r.status_code == 400 and "is not a valid name" in r.text, name
    assert door["gallery"].read_bytes() == before
