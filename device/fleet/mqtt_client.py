"""The MQTT adapter: the only module that imports paho-mqtt (>= 2.0, callback API version 2).

One :class:`MqttClient` is one connection to a broker: ``mqtt://`` or ``mqtts://`` (TLS with the system's CAs or
``ca_file``), username/password or a client certificate, a last will, and paho's own network thread, which
reconnects with exponential backoff (``retry_initial_s`` doubling up to ``retry_max_s``) for as long as the
client runs; the first connection is retried the same way, so a door starts without its broker. Subscriptions
are renewed on every connect; ``clean_session=False`` with a fixed client id (a collector) makes the broker
keep the subscription and queue QoS 1 messages while the client is away. Callbacks never raise into paho's thread (an exception there would
end the thread, and with it every reconnect): they are logged and counted in ``callback_errors``.

``max_packet`` (from ``[fleet] max_gallery_mb`` plus the envelope's room) bounds an incoming packet: one whose
length header announces more is skipped as it arrives, read and dropped a socket buffer at a time, never held
(:class:`_BoundedClient`), logged and counted in ``oversize``; the connection stays up.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import paho.mqtt.client as mqtt

from edgeface.config import parse_broker
from edgeface.errors import EdgefaceError

log = logging.getLogger(__name__)


class BrokerError(EdgefaceError):
    """The broker cannot be reached or refused us (within the time a command is willing to wait)."""


#: what a packet may carry beyond the largest gallery: topic, signature document, envelope
PACKET_ROOM = 64 << 10


class _BoundedClient(mqtt.Client):
    """paho's client with a ceiling on incoming packets. paho reads a packet's length header, then its whole body
    into memory; here a body longer than ``max_packet`` is skipped from its length header on: each later read
    drops up to 64 KiB from the socket until the body has passed, then the next packet is read as usual. (paho's
    reading path, ``_packet_read`` and ``_in_packet``: checked against a real broker in tests/test_fleet_mqtt.py.)"""

    max_packet: int | None = None
    oversize = 0
    _skip = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        while self._skip > 0:
            data = super()._sock_recv(min(self._skip, 1 << 16))  # BlockingIOError: nothing more for now
            if not data:
                return data  # the connection is gone
            self._skip -= len(data)
        p = self._in_packet
        if (self.max_packet is not None and p["have_remaining"] and p["remaining_length"] > self.max_packet
                and p["to_process"] == p["remaining_length"]):
            self.oversize += 1
            self._skip = p["remaining_length"]
            log.warning("MQTT: a packet of %d bytes (more than the %d allowed) was refused unread",
                        p["remaining_length"], self.max_packet)
            self._in_packet = {"command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1,
                               "remaining_length": 0, "packet": bytearray(b""), "to_process": 0, "pos": 0}
            raise BlockingIOError()  # paho: no data now; the next read starts skipping
        return super()._sock_recv(bufsize)


class MqttClient:
    def __init__(self, broker: str, client_id: str = "", *, username: str | None = None,
                 password: str | None = None, ca_file=None, cert_file=None, key_file=None,
                 keepalive_s: int = 30, retry_initial_s: float = 1.0, retry_max_s: float = 60.0,
                 will: tuple[str, bytes] | None = None,
                 on_message: Callable[[str, bytes], None] | None = None,
                 on_connected: Callable[[], None] | None = None,
                 on_disconnected: Callable[[str], None] | None = None,
                 subscriptions: tuple[tuple[str, int], ...] = (), clean_session: bool = True,
                 max_packet: int | None = None) -> None:
        tls, self.host, self.port = parse_broker(broker)
        self.broker = broker
        self.keepalive_s = int(keepalive_s)
        self.subscriptions = tuple(subscriptions)
        self.on_message, self.on_connected, self.on_disconnected = on_message, on_connected, on_disconnected
        self.callback_errors = 0
        self.last_error: str | None = None
        self._connected = threading.Event()
        self._client = _BoundedClient(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                      clean_session=clean_session)
        self._client.max_packet = max_packet
        self._client.reconnect_delay_set(retry_initial_s, retry_max_s)
        if tls or ca_file or cert_file:
            self._client.tls_set(ca_certs=None if ca_file is None else str(ca_file),
                                 certfile=None if cert_file is None else str(cert_file),
                                 keyfile=None if key_file is None else str(key_file))
        if username is not None:
            self._client.username_pw_set(username, password)
        if will is not None:
            self._client.will_set(will[0], will[1], qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_message = self._on_message

    @classmethod
    def from_config(cls, fleet, client_id: str, **kw) -> "MqttClient":
        """From an :class:`edgeface.config.FleetConfig` (the password is read from ``password_file``)."""
        password = None
        if fleet.password_file is not None:
            from edgeface.errors import ConfigError

            try:
                mode = fleet.password_file.stat().st_mode & 0o777
                password = fleet.password_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"[fleet] password_file {fleet.password_file}: {exc}") from None
            except UnicodeDecodeError:
                raise ConfigError(f"[fleet] password_file {fleet.password_file} is not text (UTF-8): one line, the "
                                  "password") from None
            if mode & 0o007:
                raise ConfigError(f"[fleet] password_file {fleet.password_file} is readable by every user (mode "
                                  f"{mode:o}): chmod o-rwx it (0600 or 0640)")
            if not password:
                raise ConfigError(f"[fleet] password_file {fleet.password_file} is empty")
        kw.setdefault("max_packet", int(fleet.max_gallery_mb * (1 << 20)) + PACKET_ROOM)
        return cls(fleet.broker, client_id, username=fleet.username, password=password, ca_file=fleet.ca_file,
                   cert_file=fleet.cert_file, key_file=fleet.key_file, keepalive_s=fleet.keepalive_s,
                   retry_initial_s=fleet.retry_initial_s, retry_max_s=fleet.retry_max_s, **kw)

    # -- life -----------------------------------------------------------------------------------------------
    def start(self) -> "MqttClient":
        """Connect in the background (never blocks, never raises for an absent broker)."""
        self._client.connect_async(self.host, self.port, keepalive=self.keepalive_s)
        self._client.loop_start()
        return self

    def wait_connected(self, timeout_s: float) -> "MqttClient":
        if not self._connected.wait(timeout_s):
            why = f": {self.last_error}" if self.last_error else ""
            raise BrokerError(f"no connection to {self.broker} within {timeout_s:g} s{why}")
        return self

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def oversize(self) -> int:
        """Incoming packets refused unread for being larger than ``max_packet``."""
        return self._client.oversize

    def stop(self, last: tuple[str, bytes] | None = None, timeout_s: float = 2.0) -> None:
        """Publish ``last`` (retained, e.g. an ``offline`` status) if connected, disconnect, end the thread."""
        try:
            if last is not None and self.connected:
                self.publish(*last, retain=True).wait_for_publish(timeout_s)
        except (RuntimeError, ValueError, OSError) as exc:
            log.debug("last message not sent: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    # -- messages -------------------------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False):
        """Hand a message to paho; returns its ``MQTTMessageInfo`` (``is_published()`` once the broker acked a
        QoS 1 message; paho resends unacknowledged ones after a reconnect)."""
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    def publish_and_wait(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                         timeout_s: float = 30.0) -> None:
        info = self.publish(topic, payload, qos=qos, retain=retain)
        deadline = time.monotonic() + timeout_s
        while not info.is_published():
            if time.monotonic() > deadline:
                raise BrokerError(f"{self.broker} did not acknowledge the message on {topic} within {timeout_s:g} s")
            time.sleep(0.02)

    # -- paho callbacks (paho's thread) ---------------------------------------------------------------------
    def _guard(self, what: str, fn, *args) -> None:
        if fn is None:
            return
        try:
            fn(*args)
        except Exception as exc:  # never into paho's thread
            self.callback_errors += 1
            log.error("MQTT %s handler failed: %s: %s", what, type(exc).__name__, exc)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = f"refused: {reason_code}"
            log.warning("broker %s refused the connection: %s", self.broker, reason_code)
            return
        for topic, qos in self.subscriptions:
            client.subscribe(topic, qos=qos)
        self._connected.set()
        self.last_error = None
        self._guard("connect", self.on_connected)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was:
            self._guard("disconnect", self.on_disconnected, str(reason_code))

    def _on_connect_fail(self, client, userdata) -> None:
        self.last_error = f"cannot connect to {self.host}:{self.port}"

    def _on_message(self, client, userdata, message) -> None:
        self._guard("message", self.on_message, message.topic, bytes(message.payload))
