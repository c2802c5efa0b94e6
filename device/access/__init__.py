"""Access control at the door: credential readers (Wiegand, evdev keyboard wedge / keypad, a simulated
file), the door's own inputs (contact, request-to-exit, tamper), granted/denied feedback outputs, and the mode
logic (face, face_or_badge, face_and_badge, face_and_pin) that plugs into the gate as one hook object
(:class:`edgeface.device.access.decide.AccessControl`). Device libraries are imported inside the adapters."""
