"""dlib's public-domain model files (``.dat``) read by edgeface's own code: no dlib at run time."""
