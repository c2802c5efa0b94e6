"""People: the list, adding a person (photo upload or a door-camera snapshot, checked before saving: the verdict
shows the detected, aligned face, kept in memory only), their badges, PIN, schedule, groups and validity
(:mod:`edgeface.access.people_set`, the code of ``edgeface people set``), removal and renaming with a
confirmation. Every change is written through :mod:`.store` and audited."""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Route

from edgeface.errors import EdgefaceError
from edgeface.gallery import GalleryError, GalleryNotFoundError, PersonNameError, check_name

from .app import form_of, login_required, page, redirect, state
from .store import change_gallery, read_gallery, revoke_person, signed_door

PENDING_S = 600  # a checked photo waits this long for "save"


class EnrollRefused(EdgefaceError):
    """The identity checks refused the photo when it was saved."""


def _gallery_or_none(s):
    try:
        return read_gallery(s.cfg.model.gallery)
    except GalleryNotFoundError:
        return None


def _person(s, pid: str):
    gallery = _gallery_or_none(s)
    person = gallery.find(pid) if gallery is not None else None
    if person is None:
        raise HTTPException(404, "nobody with that id is enrolled (removed already?)")
    return person


def _row(p, clock=None) -> dict:
    access = p.attributes.get("access") if isinstance(p.attributes.get("access"), dict) else {}
    other = {k: v for k, v in p.attributes.items() if k != "access"}
    when = clock.show if clock is not None else (lambda iso: iso[:19].replace("T", " "))
    return {"id": p.id, "name": p.name, "embeddings": len(p.embeddings), "created": when(p.created)[:16],
            "updated": when(p.updated)[:16], "access": {k: v for k, v in access.items() if k != "pin"},
            "pin": bool(access.get("pin")), "other": other}


@login_required
async def people(request):
    s = state(request)
    problem, rows = "", []
    try:
        gallery = _gallery_or_none(s)
        rows = [_row(p, s.clock) for p in gallery.people] if gallery else []
    except GalleryError as exc:
        problem = f"The gallery cannot be read: {exc}"
    return page(request, "people.html", {"people": rows, "problem": problem, "gallery": s.cfg.model.gallery,
                                         "zone": s.clock.zone, "mode": s.cfg.access.mode})


@login_required
async def add_form(request):
    return page(request, "add.html", {"limit_mb": state(request).cfg.admin.upload_max_bytes / (1 << 20)})


def _too_big(request, limit: int) -> bool:
    try:
        return int(request.headers.get("content-length", "0")) > limit + (64 << 10)
    except ValueError:
        return True


def _refuse(request, name: str, message: str, status_code: int):
    return page(request, "add.html", {"name": name, "error": message,
                                      "limit_mb": state(request).cfg.admin.upload_max_bytes / (1 << 20)}, status_code)


async def _check_and_show(request, name: str, image, photo: bytes | None, source: str):
    """``image``: the upload's bytes (read by the one photo reader) or a camera snapshot (an image)."""
    s = state(request)
    if signed_door(s.cfg.model.gallery):  # issue 22: adding on a signed door needs the desk's signature
        return _refuse(request, name, "This door runs the enrolment desk's signed gallery: new people, badges and "
                                      "PINs are added at the desk and published from there (edgeface fleet publish). "
                                      "Removing someone works here.", 409)
    if not name:
        return _refuse(request, name, "Give the person a name.", 400)
    try:
        name = check_name(name)
    except PersonNameError as exc:
        return _refuse(request, "", f"{exc}.", 400)
    from edgeface.enroll_photos import UnsupportedImageError

    try:
        gallery = _gallery_or_none(s)
        verdict = await run_in_threadpool(s.enroller.check, image, gallery, name)
    except UnsupportedImageError as exc:
        return _refuse(request, name, f"This file is not a photo edgeface takes: {exc}", 415)
    except (EdgefaceError, OSError) as exc:
        return _refuse(request, name, f"Cannot check the photo: {exc}", 500)
    token = ""
    existing = gallery.find(name) if gallery is not None else None
    if verdict.ok:
        token = secrets.token_urlsafe(16)
        pending = request.state.session.pending
        for k in [k for k, v in pending.items() if k != "_flash" and v["expires"] < time.monotonic()]:
            del pending[k]
        pending[token] = {"name": name, "embedding": verdict.embedding, "source": source,
                          "photo": photo if s.cfg.admin.save_faces else None,
                          "expires": time.monotonic() + PENDING_S}
    return page(request, "verdict.html", {"name": name, "verdict": verdict, "token": token, "source": source,
                                          "existing": existing is not None, "face": face_data_url(verdict.crop)},
                200 if verdict.ok else 422)


def face_data_url(crop) -> str:
    """The aligned face as an inline PNG (``data:`` URL): shown on the verdict page, never written anywhere."""
    if crop is None:
        return ""
    import base64

    import cv2

    ok, png = cv2.imencode(".png", crop)
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii") if ok else ""


@login_required
async def add(request):
    s = state(request)
    limit = s.cfg.admin.upload_max_bytes
    if _too_big(request, limit):
        return _refuse(request, "", f"The photo is too large: at most {limit / (1 << 20):.1f} MB.", 413)
    try:
        form = await form_of(request, max_part_size=limit + 1)
    except HTTPException as exc:
        if exc.status_code in (400, 413):  # a damaged form, or a body cut at the limit (admin.security.BodyLimit)
            return _refuse(request, "", f"The photo is too large or the form is damaged (at most "
                                        f"{limit / (1 << 20):.1f} MB).", 413)
        raise
    name = str(form.get("name", "")).strip()
    upload = form.get("photo")
    if upload is None or isinstance(upload, str) or not upload.filename:
        return _refuse(request, name, "Choose a photo to upload.", 400)
    data = await upload.read(limit + 1)
    await upload.close()
    if len(data) > limit:
        return _refuse(request, name, f"The photo is too large: at most {limit / (1 << 20):.1f} MB.", 413)
    return await _check_and_show(request, name, data, data, "photo")


def _snapshot(cfg):
    """One frame from the configured door camera (opened, read, closed)."""
    from ..camera import open_camera

    camera = open_camera(cfg.camera.source, cfg.camera, realtime=False)
    camera.open()
    try:
        deadline = time.monotonic() + cfg.camera.read_timeout_s
        while time.monotonic() < deadline:
            frame = camera.read()
            if frame is not None:
                return frame.image
        raise EdgefaceError("the camera delivered no frame")
    finally:
        camera.close()


@login_required
async def snapshot(request):
    s = state(request)
    form = await form_of(request)
    name = str(form.get("name", "")).strip()
    try:
        image = await run_in_threadpool(_snapshot, s.cfg)
    except Exception as exc:  # CameraError, a busy device, a missing file: say so, the page stays up
        return _refuse(request, name, f"No snapshot from the door camera ({s.cfg.camera.source}): {exc}", 503)
    s.audit("admin_snapshot", request.state.session.user, "took a snapshot from the door camera", person=name)
    photo = None
    if s.cfg.admin.save_faces:
        import cv2

        photo = cv2.imencode(".png", image)[1].tobytes()
    return await _check_and_show(request, name, image, photo, "camera")


def _keep_photo(s, person, photo: bytes) -> None:
    """Only with ``[admin] save_faces``: the enrollment photo, 0600, in a 0700 folder per person."""
    import os

    root = s.cfg.admin.photos_dir or s.cfg.admin.accounts.parent / "photos"
    folder = root / person.id
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    fd = os.open(folder / f"{stamp}.img", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(photo)


@login_required
async def save(request):
    s = state(request)
    form = await form_of(request)
    item = request.state.session.pending.pop(str(form.get("token", "")), None)
    if item is None or item["expires"] < time.monotonic():
        return _refuse(request, "", "That check has expired: add the photo again.", 410)
    enroller = s.enroller
    allow = form.get("allow_similar") == "yes"

    def add(gallery):  # under the gallery's lock, on the file as it is now: the checks again, then the change
        check = enroller.identity(gallery, item["name"], item["embedding"], allow)
        if check.refusal:
            raise EnrollRefused(check.refusal)
        if check.duplicates:
            raise EnrollRefused(f"this photo of {item['name']} is already enrolled")
        return gallery.add(item["name"], item["embedding"][None])

    try:
        person = await run_in_threadpool(change_gallery, s.cfg.model.gallery, add,
                                         fingerprint=enroller.fingerprint, embedding_size=enroller.embedding_size)
    except (GalleryError, EnrollRefused) as exc:
        return _refuse(request, item["name"], f"Not saved: {exc}", 409)
    if item["photo"] is not None:
        _keep_photo(s, person, item["photo"])
    s.audit("person_added", request.state.session.user, f"enrolled from a {item['source']} "
            f"({len(person.embeddings)} embedding(s))", person=person.name, person_id=person.id)
    return redirect(request, "/people", f"{person.name} is enrolled.")


def _access_form(person) -> dict:
    raw = person.attributes.get("access") if isinstance(person.attributes.get("access"), dict) else {}
    return {"badges": ", ".join(raw.get("badges", [])), "pin": bool(raw.get("pin")),
            "schedule": raw.get("schedule", ""), "groups": ", ".join(raw.get("groups", [])),
            "valid_from": raw.get("valid_from", ""), "valid_until": raw.get("valid_until", "")}


def _access_page(request, person, values: dict, error: str = "", status_code: int = 200):
    s = state(request)
    return page(request, "access.html", {"person": _row(person, s.clock), "v": values, "error": error,
                                         "zone": s.clock.zone, "mode": s.cfg.access.mode,
                                         "groups_known": sorted(s.cfg.access.schedules)}, status_code)


@login_required
async def access_form(request):
    person = _person(state(request), request.path_params["pid"])
    return _access_page(request, person, _access_form(person))


def _words(text: str) -> list[str]:
    return [w for w in text.replace(",", " ").split() if w]


@login_required
async def access(request):
    """Badges, PIN, schedule, groups and validity of one person: the change of ``edgeface people set``
    (:func:`edgeface.access.people_set.access_editor`), under the gallery's lock. The PIN is hashed there and never
    shown, logged or kept in the form."""
    from types import SimpleNamespace

    from edgeface.access.credentials import AccessDataError
    from edgeface.access.people_set import access_editor, summary

    s = state(request)
    form = await form_of(request)
    pid = request.path_params["pid"]
    person = _person(s, pid)
    values = {k: str(form.get(k, "")).strip()[:200] for k in ("badges", "schedule", "groups", "valid_from",
                                                              "valid_until")}
    values["pin"] = bool(person.attributes.get("access", {}).get("pin")) if isinstance(
        person.attributes.get("access"), dict) else False
    pin, again = str(form.get("new_pin", "")), str(form.get("new_pin_again", ""))
    clear_pin = form.get("clear_pin") == "yes"
    if pin != again:
        return _access_page(request, person, values, "The two PINs differ; nothing was changed.", 400)
    if pin and clear_pin:
        return _access_page(request, person, values, "Either set a new PIN or remove it, not both.", 400)
    args = SimpleNamespace(name=pid, badge=_words(values["badges"]), clear_badge=True, clear_pin=clear_pin,
                           schedule=values["schedule"], group=_words(values["groups"]),
                           valid_from=values["valid_from"], valid_until=values["valid_until"])
    try:
        from edgeface.access.credentials import find_pin_secret

        secret = find_pin_secret(s.cfg.access.pin_secret_file) if pin else None  # the site's key, as the door's
        changed = await run_in_threadpool(change_gallery, s.cfg.model.gallery, access_editor(args, pin or None, secret))
    except (AccessDataError, GalleryError) as exc:
        return _access_page(request, person, values, f"Not saved: {exc}", 400)
    what = summary(changed) + ("; PIN changed" if pin else "; PIN removed" if clear_pin else "")
    s.audit("person_access_changed", request.state.session.user, what, person=changed.name, person_id=changed.id)
    return redirect(request, "/people", f"{changed.name}: {what}.")


@login_required
async def remove_form(request):
    return page(request, "remove.html", {"person": _row(_person(state(request), request.path_params["pid"]))})


@login_required
async def remove(request):
    s = state(request)
    await form_of(request)
    pid = request.path_params["pid"]
    _person(s, pid)
    if signed_door(s.cfg.model.gallery):  # issue 22: a local revocation; the signed file stays as signed
        try:
            person = await run_in_threadpool(revoke_person, s.cfg.model.gallery, pid, request.state.session.user)
        except GalleryError as exc:
            raise HTTPException(409, f"not removed: {exc}") from None
        s.audit("person_revoked", request.state.session.user, "revoked on this door (the desk's signed list "
                "still holds them until it is published without them)", person=person.name, person_id=person.id)
        return redirect(request, "/people", f"{person.name} is revoked on this door: the door no longer lets them "
                        "in. Remove them at the enrolment desk too, so that every door's list drops them.")
    try:
        person = await run_in_threadpool(change_gallery, s.cfg.model.gallery, lambda g: g.remove(pid))
    except GalleryError as exc:
        raise HTTPException(409, f"not removed: {exc}") from None
    s.audit("person_removed", request.state.session.user, f"removed with all {len(person.embeddings)} "
            "embedding(s)", person=person.name, person_id=person.id)
    return redirect(request, "/people", f"{person.name} is removed; every embedding of theirs has left the gallery.")


@login_required
async def rename_form(request):
    return page(request, "rename.html", {"person": _row(_person(state(request), request.path_params["pid"]))})


@login_required
async def rename(request):
    s = state(request)
    form = await form_of(request)
    pid = request.path_params["pid"]
    old = _person(s, pid)
    new = str(form.get("name", "")).strip()
    try:
        new = check_name(new)
    except PersonNameError as exc:
        return page(request, "rename.html", {"person": _row(old), "error": str(exc)}, 400)
    try:
        person = await run_in_threadpool(change_gallery, s.cfg.model.gallery, lambda g: g.rename(pid, new))
    except GalleryError as exc:
        return page(request, "rename.html", {"person": _row(old), "error": str(exc)}, 409)
    s.audit("person_renamed", request.state.session.user, f"renamed from {old.name!r}", person=person.name,
            person_id=person.id)
    return redirect(request, "/people", f"{old.name} is now called {person.name}.")


def routes():
    return [
        Route("/people", people),
        Route("/people/add", add_form, methods=["GET"]),
        Route("/people/add", add, methods=["POST"]),
        Route("/people/snapshot", snapshot, methods=["POST"]),
        Route("/people/save", save, methods=["POST"]),
        Route("/people/{pid}/remove", remove_form, methods=["GET"]),
        Route("/people/{pid}/remove", remove, methods=["POST"]),
        Route("/people/{pid}/rename", rename_form, methods=["GET"]),
        Route("/people/{pid}/rename", rename, methods=["POST"]),
        Route("/people/{pid}/access", access_form, methods=["GET"]),
        Route("/people/{pid}/access", access, methods=["POST"]),
    ]
