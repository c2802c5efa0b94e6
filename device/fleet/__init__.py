"""Many doors, one list of people: signed galleries distributed over MQTT, door events collected upstream.

``keys`` (Ed25519 key pairs), ``signing`` (detached signatures and the MQTT envelope over the exact gallery file
bytes; version numbers only go up), ``install`` (the one step that writes a verified gallery to disk),
``topics``, ``mqtt_client`` (the paho-mqtt adapter: the only module that imports paho), ``event_queue`` (the
door's on-disk outbox), ``subscriber`` (the door side of a gallery message), ``door_link`` (everything a door
runs against the broker), ``publisher`` (``edgeface fleet publish`` / ``fleet events``). See docs/deployment.md.
"""
