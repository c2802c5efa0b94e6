"""Device side of edgeface (``edgeface.device``): camera sources, the decision policy, relay drivers, the
audit log, sd_notify and the gate loop. Never imports torch; device libraries (picamera2, gpiozero, lgpio,
Jetson.GPIO) are imported lazily inside their adapters.
"""
