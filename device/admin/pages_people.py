"""People: the list, adding a person (photo upload or a door-camera snapshot, checked before saving), removal
and renaming with a confirmation. Every change is written through :mod:`.store` and audited."""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Route

from edgeface.errors import EdgefaceError
from edgeface.gallery import GalleryError, GalleryNotFoundError

from .app import form_of, login_required, page, redirect, state
from .enrollment import decode_image
from .store import change_gallery, read_gallery

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


def _row(p) -> dict:
    access = p.attributes.get("access") if isinstance(p.attributes.get("access"), dict) else {}
    other = {k: v for k, v in p.attributes.items() if k != "access"}
    return {"id": p.id, "name": p.name, "embeddings": len(p.embeddings), "created": p.created[:16].replace("T", " "),
            "updated": p.updated[:16].replace("T", " "), "access": access, "other": other}


@login_required
async def people(request):
    s = state(request)
    problem, rows = "", []
    try:
        gallery = _gallery_or_none(s)
        rows = [_row(p) for p in gallery.people] if gallery else []
    except GalleryError as exc:
        problem = f"The gallery cannot be read: {exc}"
    return page(request, "people.html", {"people": rows, "problem": problem, "gallery": s.cfg.model.gallery})


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
    s = state(request)
    if not name:
        return _refuse(request, name, "Give the person a name.", 400)
    try:
        gallery = _gallery_or_none(s)
        verdict = await run_in_threadpool(s.enroller.check, image, gallery, name)
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
                                          "existing": existing is not None}, 200 if verdict.ok else 422)


@login_required
async def add(request):
    s = state(request)
    limit = s.cfg.admin.upload_max_bytes
    if _too_big(request, limit):
        return _refuse(request, "", f"The photo is too large: at most {limit / (1 << 20):.1f} MB.", 413)
    try:
        form = await form_of(request, max_part_size=limit + 1)
    except HTTPException as exc:
        if exc.status_code == 400:
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
    image = decode_image(data)
    if image is None:
        return _refuse(request, name, "This file is not an image: upload a JPEG or PNG photo.", 415)
    return await _check_and_show(request, name, image, data, "photo")


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


@login_required
async def remove_form(request):
    return page(request, "remove.html", {"person": _row(_person(state(request), request.path_params["pid"]))})


@login_required
async def remove(request):
    s = state(request)
    await form_of(request)
    pid = request.path_params["pid"]
    _person(s, pid)
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
    ]
