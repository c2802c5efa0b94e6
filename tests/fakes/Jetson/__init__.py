"""Fake ``Jetson`` package (see ../README.md): only ``Jetson.GPIO`` is provided."""
