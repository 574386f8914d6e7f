"""stagecoder front ends: the pygls language server and the command line."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stagecoder")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"
