"""Access-control data shared by the desk and the door: schedules and validity (``schedule``) and a person's
credentials record in the gallery (``credentials``). Standard library only; the readers, the door inputs and
the 1:1 decision logic are in :mod:`edgeface.device.access`."""
