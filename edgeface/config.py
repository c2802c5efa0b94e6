"""Configuration: TOML validated with pydantic.

Unknown keys are forbidden and every field is described; an error names the file, the key and the line.
``edgeface validate-config FILE`` exits 78 (EX_CONFIG) on error, as does the gate.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

#: the relay is never held longer than this, whatever a config says
HARD_MAX_PULSE_S = 15.0


class Section(BaseModel):
    """Every section: unknown keys refused, and no float may be infinite or NaN (``inf`` is not a number of
    seconds or megabytes); every number also has an upper bound of its own."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ModelConfig(Section):
    bundle: Path = Field(description="model bundle directory (edgeface.json + model files)")
    key: str | None = Field(None, description="which model of the bundle to run (onnx_int8, tflite_int8, ...); default: the bundle's preferred")
    threads: int = Field(1, ge=1, le=64, description="inference threads")
    providers: list[str] | None = Field(None, description="onnxruntime execution providers, e.g. ['CUDAExecutionProvider', 'CPUExecutionProvider']")
    gallery: Path = Field(description="gallery file of enrolled people (edgeface enroll)")
    mirror: bool = Field(True, description="also embed each live face's mirror image and average, as enrollment and "
                                           "calibration do (measured: more employees let in at the same FAR); twice "
                                           "the embedder time per frame. false: the embedder once per frame, a "
                                           "little less accurate (the calibrated FAR still holds)")
    gallery_public_key: Path | None = Field(None, description="Ed25519 public key (PEM): when set, only galleries signed with it for this door's site (GALLERY.sig, edgeface gallery sign / fleet publish) and never older than the last accepted one are used; local removals become revocations (GALLERY.revoked)")
    gallery_site: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="the site a signed gallery must be signed for, on a door without [fleet] (default: [fleet] site)")
    max_gallery_age_s: float | None = Field(None, gt=0, le=365 * 86400, allow_inf_nan=False, description="a signed gallery counts as stale this long after the desk last vouched for it (the gallery's own signature or its newest 'still current' statement, edgeface fleet refresh); default: only the signature's own expiry")
    stale_mode: Literal["all_denied", "badge_only", "faces_denied"] = Field("all_denied", description="what a door whose signed gallery is stale (expired, older than max_gallery_age_s, or behind the site's newer version) still lets in: all_denied (nobody; the exit button still works), badge_only (grants that include a badge), faces_denied (no face alone; face and badge or PIN still)")
    accept_degraded: bool = Field(False, description="acknowledge running a model whose export failed the int8 parity gate (--allow-degraded)")


class DetectorConfig(Section):
    kind: Literal["yunet", "haar"] = Field("yunet", description="yunet (accurate) or haar (zero-download fallback, lower accuracy)")
    model_path: Path | None = Field(None, description="YuNet ONNX file; default: the model registry cache")
    score_threshold: float = Field(0.7, gt=0, lt=1, description="minimum detector score")
    detect_width: int | None = Field(None, ge=64, le=4096, description="YuNet runs on a copy of the frame downscaled to this width (boxes mapped back; landmarks and crop from the full frame); default: the narrowest width at which a face of quality.min_face_px is still 40 px (the measured floor), e.g. 448 for 640x480 and 60 px")


class CameraConfig(Section):
    source: str = Field(description="'picamera2', a device index ('0'), a V4L2 path (/dev/video0), a GStreamer pipeline, an rtsp:// URL, a video file or an image folder")
    width: int = Field(640, ge=16, le=8192, description="requested frame width")
    height: int = Field(480, ge=16, le=8192, description="requested frame height")
    fps: float = Field(15.0, gt=0, le=1000, description="requested camera frame rate")
    read_timeout_s: float = Field(2.0, gt=0, le=600, description="a read that takes longer counts as a hung camera")
    retry_initial_s: float = Field(0.5, gt=0, le=3600, description="first reconnect delay after the camera is lost")
    retry_max_s: float = Field(30.0, gt=0, le=86400, description="longest reconnect delay (exponential backoff)")


class QualityConfig(Section):
    min_face_px: int = Field(60, ge=8, le=4096, description="ignore faces whose box is smaller than this (pixels)")
    min_eye_distance_px: float = Field(20.0, ge=2, le=4096, description="minimum distance between the eyes (pixels)")
    min_sharpness: float = Field(15.0, ge=0, le=1e6, description="minimum variance of the Laplacian of the aligned crop")
    max_pose_asymmetry: float = Field(0.45, gt=0, le=10, description="how far the nose may sit off the eye midline, as a fraction of eye distance")
    max_eye_mouth_asymmetry: float = Field(0.25, gt=0, le=10, description="how much the right and left eye-to-mouth-corner distances may differ, as a fraction of their mean (yaw, tilt)")
    min_score: float = Field(0.75, ge=0, le=1, description="minimum detector score for a face to be enrolled or matched")
    similar_size_ratio: float = Field(0.8, gt=0, le=1, description="another face at least this fraction of the main face's size makes the frame ambiguous (rejected)")


class PolicyConfig(Section):
    far: float | None = Field(None, gt=0, lt=1, allow_inf_nan=False, description="the door's false-accept rate per comparison: its threshold is read from the bundle's calibration at this FAR (default: the FAR the bundle was calibrated at)")
    threshold: float | None = Field(None, ge=-1, le=1, allow_inf_nan=False, description="expert override: the door's threshold as a raw score in the bundle scorer's units (prefer far)")
    accept_lower_threshold: bool = Field(False, description="acknowledge a threshold (or far) looser than the bundle's calibrated one (more false accepts; warned loudly)")
    k: int = Field(3, ge=1, le=100, description="usable frames of an appearance before it can open the door...")
    n: int = Field(5, ge=1, le=100, description="...and how many of its latest usable frames are fused into the face that is matched")
    margin_decades: float = Field(1.0, ge=0, le=6, allow_inf_nan=False, description="ambiguity: the second-best person must be this many decades of false-accept rate less likely than the best (0: off)")
    min_margin: float | None = Field(None, description="removed: it was a cosine margin tuned for one model; use margin_decades")
    cooldown_s: float = Field(10.0, ge=0, le=3600, description="after an unlock, the same person is not unlocked again for this long")
    lockout_unknown: int = Field(10, ge=1, le=1000, description="this many failed appearances of different faces...")
    lockout_window_s: float = Field(30.0, gt=0, le=86400, description="...within this window...")
    lockout_s: float = Field(60.0, ge=0, le=86400, description="...require the stricter threshold (FAR 10x lower) from anyone for this long")
    max_fps: float = Field(10.0, gt=0, le=240, description="process at most this many frames per second")
    max_frame_age_s: float = Field(0.5, gt=0, le=60, description="drop frames older than this")
    face_gap_s: float = Field(1.5, gt=0, le=60, description="no face for this long ends an appearance")

    @model_validator(mode="after")
    def _k_le_n(self):
        if self.min_margin is not None:
            raise ValueError("min_margin is no longer used (it was a cosine margin, whose meaning depends on the "
                             "model): remove it; the ambiguity rule is margin_decades, in decades of the calibrated "
                             "false-accept rate (default 1.0)")
        if self.k > self.n:
            raise ValueError(f"k ({self.k}) must not exceed n ({self.n})")
        return self


class RelayConfig(Section):
    backend: Literal["gpiozero", "jetson", "mock"] = Field("gpiozero", description="gpiozero (Raspberry Pi), jetson (Jetson.GPIO) or mock (simulation)")
    pin: int | str = Field(17, description="GPIO pin (BCM number on a Pi, BOARD number on a Jetson)")
    active_high: bool = Field(True, description="False for relay boards that energise on a low pin")
    pulse_s: float = Field(3.0, gt=0, le=HARD_MAX_PULSE_S, description=f"how long the door stays unlocked (at most {HARD_MAX_PULSE_S} s)")


class AuditConfig(Section):
    path: Path = Field(Path("/var/lib/edgeface/audit.db"), description="SQLite audit database")
    retention_days: float = Field(90.0, gt=0, le=36500, description="delete events older than this")
    max_rows: int = Field(100_000, ge=100, le=100_000_000, description="keep at most this many events")
    save_faces: bool = Field(False, description="store the aligned face crop of each decision (privacy: off by default)")
    faces_dir: Path | None = Field(None, description="where saved face crops go (default: next to the database)")
    summary_every_min: float = Field(10.0, ge=0, le=10080, description="log a run summary (frames, latency p50/p95, stage medians, decisions, unlocks) this often; 0: only at exit")


class AdminConfig(Section):
    """The door's local admin web page (``edgeface admin``)."""

    accounts: Path = Field(Path("/var/lib/edgeface-admin/accounts.json"), description="admin accounts file (argon2 hashes, mode 0600; edgeface admin add-user)")
    log: Path = Field(Path("/var/lib/edgeface-admin/admin.db"), description="SQLite log of admin actions (logins, logouts, changes to people, relay tests)")
    tls_cert: Path | None = Field(None, description="TLS certificate (PEM); required to listen on an address other than localhost")
    tls_key: Path | None = Field(None, description="TLS private key (PEM) of tls_cert")
    session_lifetime_s: float = Field(3600.0, gt=0, le=7 * 86400, description="a login expires after this many seconds")
    max_failed_logins: int = Field(5, ge=1, le=100, description="this many failed logins of one user name, from any address...")
    max_failed_logins_per_address: int = Field(20, ge=1, le=1000, description="...or this many from one address (an IPv6 /64), whatever the names...")
    login_window_s: float = Field(300.0, gt=0, le=86400, description="...within this window refuse that name (even with the right password, from any address), or that address, until the window has passed; kept in the [admin] log database, so a restart does not clear it")
    upload_max_bytes: int = Field(8 << 20, ge=1024, le=64 << 20, description="largest photo upload accepted (bytes)")
    save_faces: bool = Field(False, description="keep uploaded enrollment photos (privacy: off; photos are processed in memory)")
    photos_dir: Path | None = Field(None, description="where kept enrollment photos go when save_faces is on (default: next to accounts)")
    relay_test_s: float = Field(1.0, gt=0, le=HARD_MAX_PULSE_S, description="how long the relay test button unlocks the door")

    @model_validator(mode="after")
    def _tls_pair(self):
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        return self


class WiegandConfig(Section):
    d0_pin: int | str = Field(description="GPIO of the reader's DATA0 line (BCM on a Pi)")
    d1_pin: int | str = Field(description="GPIO of the reader's DATA1 line")
    frame_gap_s: float = Field(0.025, gt=0, le=1, description="no bit for this long ends a frame (readers send a bit every ~2 ms)")


class KeyboardReaderConfig(Section):
    device: Path = Field(description="evdev device of a USB keyboard-wedge badge reader or keypad, e.g. /dev/input/by-id/usb-...-event-kbd")
    kind: Literal["badge", "pin"] = Field("badge", description="what the digits typed before Enter are: a badge number or a PIN")
    entry_timeout_s: float = Field(10.0, gt=0, le=600, description="digits not completed by Enter within this long are discarded")


class DoorConfig(Section):
    contact_pin: int | str | None = Field(None, description="door contact (reed switch); omit if none")
    exit_pin: int | str | None = Field(None, description="request-to-exit button; omit if none")
    tamper_pin: int | str | None = Field(None, description="tamper switch; omit if none")
    pull_up: bool = Field(True, description="internal pull-up on the inputs (switches to ground); false: pull-down")
    contact_open_high: bool = Field(True, description="the contact input reads high when the door is open")
    exit_pressed_high: bool = Field(False, description="the exit button reads high when pressed")
    tamper_high: bool = Field(True, description="the tamper input reads high when tampered with")
    debounce_s: float = Field(0.05, ge=0, le=2, description="an input level must hold this long to count")
    held_open_s: float = Field(30.0, gt=0, le=86400, description="door open longer than this: door_held_open")
    forced_grace_s: float = Field(2.0, ge=0, le=600, description="door opening within a pulse plus this long is not forced")


class FeedbackConfig(Section):
    granted_pin: int | str | None = Field(None, description="LED (or buzzer) lit when access is granted")
    denied_pin: int | str | None = Field(None, description="buzzer (or LED) sounded when access is denied")
    active_high: bool = Field(True, description="false for outputs that switch on a low pin")
    on_s: float = Field(1.0, gt=0, le=10, description="how long the granted output stays on")


class AccessConfig(Section):
    mode: Literal["face", "face_or_badge", "face_and_badge", "face_and_pin"] = Field(
        "face", description="face: 1:N identification; face_or_badge: either opens; face_and_badge / face_and_pin: "
                            "the claimed person's face must match at the verification threshold (1:1)")
    claim_window_s: float = Field(5.0, gt=0, le=60, description="a badge or PIN with no matching face within this long is denied")
    max_wrong_pins: int = Field(3, ge=1, le=20, description="face_and_pin: this many wrong PINs typed with one person's face...")
    pin_window_s: float = Field(300.0, gt=0, le=86400, description="...within this window lock that person's PIN entry (a lockout event)...")
    pin_lockout_s: float = Field(900.0, gt=0, le=86400, description="...for this long: meanwhile even their right PIN is denied")
    timezone: str = Field("UTC", description="IANA zone of the schedules and validity dates, e.g. Europe/Berlin")
    verify_far: float | None = Field(None, gt=0, lt=1, allow_inf_nan=False, description="1:1 false-accept rate: the "
                                     "threshold is read from the bundle's calibration at it; default: the bundle's "
                                     "'<key>:verify' calibration, else the door's threshold")
    verify_threshold: float | None = Field(None, ge=-1, le=1, allow_inf_nan=False, description="expert override: the "
                                           "1:1 threshold as a raw score in the bundle scorer's units")
    schedules: dict[str, str] = Field(default_factory=dict, description="group -> weekly schedule, e.g. staff = \"Mon-Fri 07:00-19:00\"")
    pin_secret_file: Path | None = Field(None, description="the site's PIN secret (edgeface keys pin-secret), which keys every stored PIN hash so that the gallery alone cannot reveal a PIN; default: $CREDENTIALS_DIRECTORY/pin-secret (systemd LoadCredentialEncrypted=) when present")
    wiegand: WiegandConfig | None = Field(None, description="Wiegand 26/34-bit badge reader on two GPIO lines")
    keyboard: KeyboardReaderConfig | None = Field(None, description="USB keyboard-wedge badge reader or keypad (evdev)")
    door: DoorConfig = Field(default_factory=DoorConfig)
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)

    @model_validator(mode="after")
    def _check(self):
        from .access.schedule import check_timezone, parse_schedule

        check_timezone(self.timezone)
        for group, text in self.schedules.items():
            parse_schedule(text, f"schedules.{group}")
        return self


TOPIC_LEVEL = r"^[A-Za-z0-9_.-]{1,64}$"  # a site or door name: one MQTT topic level: no '/', '+', '#'


def parse_broker(url: str) -> tuple[bool, str, int]:
    """``mqtt://HOST[:PORT]`` (1883) or ``mqtts://HOST[:PORT]`` (TLS, 8883) -> (tls, host, port)."""
    from urllib.parse import urlsplit

    try:
        u = urlsplit(str(url))
        port = u.port
    except ValueError as exc:
        raise ValueError(f"broker {url!r}: {exc}") from None
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname or u.path not in ("", "/") or u.username:
        raise ValueError(f"broker {url!r} is not mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    tls = u.scheme == "mqtts"
    return tls, u.hostname, port or (8883 if tls else 1883)


class FleetConfig(Section):
    broker: str = Field(description="mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS)")
    site: str = Field(pattern=TOPIC_LEVEL, description="site name: this door follows PREFIX/SITE/gallery")
    door: str = Field(pattern=TOPIC_LEVEL, description="this door's name: events go to PREFIX/SITE/DOOR/events")
    topic_prefix: str = Field("edgeface", pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", description="first topic levels")
    username: str | None = Field(None, description="broker user name")
    password_file: Path | None = Field(None, description="file holding the broker password (keeps it out of the config)")
    ca_file: Path | None = Field(None, description="CA certificate(s) that signed the broker's certificate (TLS); default: the system's")
    cert_file: Path | None = Field(None, description="client certificate (PEM) for brokers that authenticate doors by certificate")
    key_file: Path | None = Field(None, description="private key of the client certificate")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keep-alive; the broker publishes the last will after 1.5x this")
    retry_initial_s: float = Field(1.0, gt=0, le=3600, description="first reconnect delay after the broker is lost")
    retry_max_s: float = Field(60.0, gt=0, le=86400, description="longest reconnect delay (exponential backoff)")
    queue_path: Path = Field(Path("/var/lib/edgeface/fleet-outbox.db"), description="on-disk queue of events not yet delivered")
    queue_max: int = Field(10_000, ge=10, le=10_000_000, description="events kept while the broker is away; the oldest are dropped (and counted) beyond")
    max_gallery_mb: float = Field(128.0, gt=0, le=1024, description="larger gallery messages are refused")

    @field_validator("broker")
    @classmethod
    def _broker(cls, v: str) -> str:
        parse_broker(v)
        return v

    @model_validator(mode="after")
    def _cert_pair(self):
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (a client certificate and its key)")
        return self


class GateConfig(Section):
    model: ModelConfig
    camera: CameraConfig
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    relay: RelayConfig = Field(default_factory=RelayConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    admin: AdminConfig = Field(default_factory=AdminConfig)
    access: AccessConfig = Field(default_factory=AccessConfig)
    fleet: FleetConfig | None = Field(None, description="follow a site's signed gallery over MQTT and send events upstream")

    @model_validator(mode="after")
    def _fleet_needs_key(self):
        if self.fleet is not None and self.model.gallery_public_key is None:
            raise ValueError("[fleet] needs [model] gallery_public_key: a door installs only signed galleries")
        if self.model.gallery_public_key is not None and self.fleet is None and self.model.gallery_site is None:
            raise ValueError("[model] gallery_public_key needs the site the gallery is signed for: [fleet] site, or "
                             "[model] gallery_site on a door without a fleet link")
        if self.fleet is not None and self.model.gallery_site not in (None, self.fleet.site):
            raise ValueError(f"[model] gallery_site {self.model.gallery_site!r} differs from [fleet] site "
                             f"{self.fleet.site!r}")
        return self


_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")


def key_lines(text: str) -> dict[str, int]:
    """Map dotted keys ("policy.k") and tables ("policy") to their 1-based line numbers."""
    lines: dict[str, int] = {}
    table = ""
    for n, line in enumerate(text.splitlines(), start=1):
        m = _TABLE.match(line)
        if m:
            table = m.group(1).replace('"', "").replace("'", "")
            lines.setdefault(table, n)
            continue
        m = _KEY.match(line)
        if m:
            key = m.group(1).replace('"', "").replace("'", "")
            lines.setdefault(f"{table}.{key}" if table else key, n)
    return lines


def _resolve_paths(cfg: BaseModel, base: Path) -> None:
    """Relative paths in a config file are relative to the file's directory."""
    for name, value in cfg:
        if isinstance(value, BaseModel):
            _resolve_paths(value, base)
        elif isinstance(value, Path) and not value.is_absolute():
            object.__setattr__(cfg, name, base / value)


def parse_config(text: str, source: str = "<config>", model: type[BaseModel] = GateConfig, base: Path | None = None):
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        cfg = model.model_validate(data)
    except ValidationError as exc:
        lines = key_lines(text)
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
            key = ".".join(loc)
            line = None
            for i in range(len(loc), 0, -1):
                line = lines.get(".".join(loc[:i]))
                if line:
                    break
            what = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            where = f"{source}:{line}" if line else source
            problems.append(f"{where}: {key or '(top level)'}: {what}")
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems)) from None
    if base is not None:
        _resolve_paths(cfg, base)
    return cfg


def load_config(path: str | Path, model: type[BaseModel] = GateConfig):
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_config(text, str(path), model, base=path.resolve().parent)
