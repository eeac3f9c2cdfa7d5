"""The example configuration files in etc/ evaluate to a LinkRTC application."""

import os
import pkgutil
import subprocess
import sys

from twisted.application.service import IService, IServiceCollection
from twisted.trial.unittest import SynchronousTestCase

import linkrtc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(linkrtc.__file__)))


class TacTests(SynchronousTestCase):
    def test_linkrtcTac(self):
        """etc/linkrtc.tac defines `application` holding LinkRTC's service tree."""
        path = os.path.join(ROOT, "etc", "linkrtc.tac")
        if not os.path.exists(path):
            raise self.skipTest("not running from a source checkout")
        namespace = {"__file__": path}
        with open(path) as f:
            exec(compile(f.read(), path, "exec"), namespace)
        application = namespace["application"]
        service = IServiceCollection(application)
        children = list(service)
        self.assertEqual(len(children), 1)
        self.assertTrue(IService.providedBy(children[0]))


class ImportTests(SynchronousTestCase):
    def test_noReactorAtImport(self):
        """No LinkRTC module installs or imports the global reactor when imported."""
        names = [m.name for m in pkgutil.walk_packages(linkrtc.__path__, "linkrtc.")
                 if ".test" not in m.name and not m.name.endswith(".testing")]
        code = (
            "import importlib, sys\n"
            f"for n in {names!r}:\n"
            "    importlib.import_module(n)\n"
            "bad = 'twisted.internet.reactor' in sys.modules\n"
            "print('REACTOR' if bad else 'CLEAN')\n"
        )
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
        self.assertEqual(out.stdout.strip(), "CLEAN", out.stderr[-2000:])

    def test_otherReactorRefused(self):
        """twistd linkrtc with another reactor stops with a clear message."""
        out = subprocess.run(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
             "-n", "--pidfile=", "--reactor=poll", "linkrtc", "--sip", "udp:0"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("asyncio reactor", out.stdout + out.stderr)
