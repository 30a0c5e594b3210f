"""The installed distribution's version, for modules the package itself imports at start."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mews-bridge")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
