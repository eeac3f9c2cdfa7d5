"""
LinkRTC's plugin package: drop-in operator plugins are found here.

Any directory on C{sys.path} holding C{linkrtc/plugins/NAME.py} (with no
C{__init__.py} in C{linkrtc/} or C{plugins/}) adds its plugins, as with
Twisted's own plugin package.
"""

from twisted.plugin import pluginPackagePaths

__path__.extend(pluginPackagePaths(__name__))
__all__: list[str] = []
