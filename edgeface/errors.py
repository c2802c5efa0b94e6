"""Exceptions shared by every side. Each failure has its own class and a message a person can act on."""


class EdgefaceError(Exception):
    """Base class for every error edgeface raises on purpose."""


class ConfigError(EdgefaceError):
    """A config file is missing, unreadable or invalid (exit code 78, EX_CONFIG)."""


class ModelError(EdgefaceError):
    """A model file or bundle is missing, corrupt, or does not match its metadata."""


class ChecksumError(ModelError):
    """A file's sha256 differs from the one it was promised to have."""


class DlibFormatError(ModelError):
    """A dlib ``.dat`` file is truncated, malformed, or holds another network than the one asked for."""


class AlignmentError(EdgefaceError):
    """Landmarks are degenerate (too close, not finite, collinear) and cannot be aligned."""


class DetectorError(EdgefaceError):
    """A face detector could not be created or failed to run."""
