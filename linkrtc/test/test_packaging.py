"""
The installable package: the wheel carries the twistd plugin and the
C{linkrtc.plugins} drop-in package, and no C{twisted/__init__.py} (which
would shadow Twisted itself).
"""

import os
import shutil
import subprocess
import sys
import zipfile

from twisted.trial.unittest import SynchronousTestCase

import linkrtc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(linkrtc.__file__)))


class WheelTests(SynchronousTestCase):
    def setUp(self):
        if not os.path.exists(os.path.join(ROOT, "setup.cfg")):
            raise self.skipTest("not running from a source checkout")

    def test_wheel(self):
        """The built wheel holds the plugin, the package and no twisted/__init__.py."""
        tree = os.path.abspath(self.mktemp())
        shutil.copytree(
            ROOT, tree,
            ignore=shutil.ignore_patterns(".git", ".venv", "_trial_temp*", "build", "dist",
                                          "*.egg-info", "__pycache__", "docs", "bench"),
        )
        out = os.path.join(tree, "dist")
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps",
             "-q", "-w", out, tree],
            check=True, capture_output=True, timeout=300,
        )
        [wheel] = [f for f in os.listdir(out) if f.endswith(".whl")]
        names = zipfile.ZipFile(os.path.join(out, wheel)).namelist()
        self.assertIn("twisted/plugins/linkrtc_plugin.py", names)
        self.assertNotIn("twisted/__init__.py", names)
        self.assertNotIn("twisted/plugins/__init__.py", names)
        self.assertIn("linkrtc/plugins/__init__.py", names)
        self.assertIn("linkrtc/tap.py", names)
        self.assertIn("linkrtc/sip/__init__.py", names)
        self.assertFalse([n for n in names if n.startswith("etc/") or n.startswith("tests/")])
