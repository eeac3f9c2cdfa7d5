"""Tests for L{linkrtc.call.registry} and the operator plugins (docs/operators.rst)."""

import os
import shutil
import sys

from twisted.plugin import IPlugin, getPlugins
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

import linkrtc
import linkrtc.plugins
from linkrtc.call.operators.base import Operator
from linkrtc.call.registry import (
    buildMachine,
    helpOperators,
    operatorFactories,
    parseOperatorSpec,
)
from linkrtc.error import OperatorConfigError
from linkrtc.interfaces import IOperatorFactory
from linkrtc.testing import CallHarness

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(linkrtc.__file__)))
EXAMPLE = os.path.join(ROOT, "etc", "example_plugins", "linkrtc", "plugins",
                       "example_blocklist.py")


class Noop(Operator):
    name = "test.noop"
    transitions = ()


@implementer(IPlugin, IOperatorFactory)
class FakeFactory:
    operatorHelp = "Does nothing."
    argStringFormat = "Anything."

    def __init__(self, name="test.noop", placements=(("ringing", "entry"),), fail=False):
        self.operatorName = name
        self.placements = placements
        self.fail = fail
        self.args = []

    def buildOperator(self, argString):
        self.args.append(argString)
        if self.fail:
            raise ValueError("bad argument")
        return Noop()


class SpecTests(SynchronousTestCase):
    def test_parse(self):
        """NAME and NAME:ARG parse; ARG keeps its colons; an empty name fails."""
        self.assertEqual(parseOperatorSpec("a.b"), ("a.b", None))
        self.assertEqual(parseOperatorSpec("a.b:"), ("a.b", ""))
        self.assertEqual(parseOperatorSpec("a.b:https://x:1/y"), ("a.b", "https://x:1/y"))
        self.assertRaises(OperatorConfigError, parseOperatorSpec, ":x")
        self.assertRaises(OperatorConfigError, parseOperatorSpec, 3)


class BuildTests(SynchronousTestCase):
    def factories(self, *extra):
        found = dict(operatorFactories())
        for f in extra:
            found[f.operatorName] = f
        return found

    def test_stockFoundAsPlugins(self):
        """The stock operators are plugins found by getPlugins, like users' ones."""
        names = {f.operatorName for f in getPlugins(IOperatorFactory, linkrtc.plugins)}
        for name in ("OpRing", "OpAnswerCall", "OpEndCall", "OpCancel", "OpRingTimeout"):
            self.assertIn(name, names)
        for f in operatorFactories().values():
            verifyObject(IOperatorFactory, f)

    def test_topology(self):
        """The default machine: stock operators in their states and queues, in order."""
        queues = buildMachine().operatorsByQueue()
        self.assertEqual(queues["pending"]["event"][:3],
                         ["OpRing", "OpApiTakeControl", "OpRoute"])
        self.assertIn("OpAnswerCall", queues["ringing"]["event"])
        self.assertIn("OpEndCall", queues["confirmed"]["event"])
        self.assertEqual(queues["confirmed"]["event"][-1], "OpInDialogRequest")
        self.assertEqual(queues["dropped"]["entry"],
                         ["OpSIPHangup", "OpNotifyClients", "OpNotifyApplication",
                          "OpTellHeir", "OpReleaseCall", "OpApiReleased"])
        self.assertEqual(queues["calling"]["entry"],
                         ["OpNotifyApplication", "OpStartRingTimer", "OpOfferClient"])

    def test_placed(self):
        """A plugin named in the specs is built with its argument and placed."""
        f = FakeFactory()
        m = buildMachine(["test.noop:42"], self.factories(f))
        self.assertEqual(f.args, ["42"])
        self.assertEqual(m.operatorsByQueue()["ringing"]["entry"][-1], "test.noop")

    def test_placedFirst(self):
        """A C{"first"} placement goes before the stock operators."""
        f = FakeFactory(placements=(("pending", "event", "first"),))
        m = buildMachine(["test.noop"], self.factories(f))
        self.assertEqual(m.operatorsByQueue()["pending"]["event"][0], "test.noop")

    def test_unknownName(self):
        """An unknown operator name fails at start-up."""
        e = self.assertRaises(OperatorConfigError, buildMachine, ["nope"])
        self.assertIn("nope", str(e))

    def test_unknownState(self):
        """A placement in an unknown state fails at start-up."""
        f = FakeFactory(placements=(("ringnig", "entry"),))
        e = self.assertRaises(OperatorConfigError, buildMachine, ["test.noop"],
                              self.factories(f))
        self.assertIn("ringnig", str(e))

    def test_unknownQueue(self):
        """A placement in an unknown queue fails at start-up."""
        f = FakeFactory(placements=(("ringing", "middle"),))
        self.assertRaises(OperatorConfigError, buildMachine, ["test.noop"], self.factories(f))

    def test_stockNamedAgain(self):
        """Naming a stock operator in --operator fails."""
        self.assertRaises(OperatorConfigError, buildMachine, ["OpRing"])

    def test_factoryFails(self):
        """A factory that raises on its argument is a configuration error."""
        f = FakeFactory(fail=True)
        self.assertRaises(OperatorConfigError, buildMachine, ["test.noop:x"], self.factories(f))

    def test_notAnOperator(self):
        """A factory that builds something that is not an IOperator fails at start-up."""
        f = FakeFactory()
        f.buildOperator = lambda arg: object()
        self.assertRaises(OperatorConfigError, buildMachine, ["test.noop"], self.factories(f))

    def test_help(self):
        """--help-operators lists plugins with their help, argument and placements."""
        text = helpOperators(self.factories(FakeFactory()))
        self.assertIn("test.noop", text)
        self.assertIn("Does nothing.", text)
        self.assertIn("ARG: Anything.", text)
        self.assertIn("ringing/entry", text)
        self.assertIn("OpRing", text)
        self.assertTrue(text.endswith("\n"))
        self.assertIn("OpRing", helpOperators())


class ExamplePluginTests(SynchronousTestCase):
    """The example plugin of docs/operators.rst, loaded from a drop-in directory."""

    def setUp(self):
        if not os.path.exists(EXAMPLE):
            raise self.skipTest("not running from a source checkout")
        top = os.path.abspath(self.mktemp())
        plugins = os.path.join(top, "linkrtc", "plugins")
        os.makedirs(plugins)
        shutil.copy(EXAMPLE, plugins)
        # What pluginPackagePaths would have found had the directory been on
        # sys.path when linkrtc.plugins was imported.
        self.patch(sys, "path", [top] + sys.path)
        self.patch(linkrtc.plugins, "__path__", list(linkrtc.plugins.__path__) + [plugins])
        self.addCleanup(sys.modules.pop, "linkrtc.plugins.example_blocklist", None)

    def test_noInitFiles(self):
        """The example drop-in directory has no __init__.py in linkrtc/ or plugins/."""
        base = os.path.join(ROOT, "etc", "example_plugins", "linkrtc")
        self.assertFalse(os.path.exists(os.path.join(base, "__init__.py")))
        self.assertFalse(os.path.exists(os.path.join(base, "plugins", "__init__.py")))

    def test_found(self):
        """getPlugins finds the example; --help-operators lists it."""
        factories = operatorFactories()
        self.assertIn("example.blocklist", factories)
        verifyObject(IOperatorFactory, factories["example.blocklist"])
        self.assertIn("example.blocklist", helpOperators())

    def test_blocksListedCaller(self):
        """A listed caller gets 603 before the application is asked."""
        h = CallHarness(operators=["example.blocklist:bob,mallory"])
        call, leg = h.invite(fromURI="sip:mallory@192.0.2.66")
        self.assertEqual(leg.finalStatus, 603)
        self.assertEqual(h.application.incomings, [])
        self.assertEqual(call.data["example.blocklist"], "mallory")
        self.assertEqual(h.cdrs[0]["reason"], "caller mallory is blocked")

    def test_othersGoThrough(self):
        """Other callers' calls run as usual through the plugin."""
        h = CallHarness(operators=["example.blocklist:mallory"])
        call, leg, alice = h.answer()
        self.assertEqual(leg.finalStatus, 200)
        self.assertEqual(h.machine.operatorsByQueue()["pending"]["event"][0],
                         "example.blocklist")

    def test_missingArgument(self):
        """The example without its argument fails at start-up."""
        self.assertRaises(OperatorConfigError, buildMachine, ["example.blocklist"])
