"""Tests for L{linkrtc.sip.leglistener}."""

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from linkrtc.interfaces import ISIPLegListener
from linkrtc.sip.leglistener import DetachedLegListener
from linkrtc.sip.test.test_useragent import request


class DetachedLegListenerTests(SynchronousTestCase):
    def answer(self, method):
        statuses = []
        DetachedLegListener().legRequestReceived(request(method, toTag="tt"),
                                                 lambda status, *a, **kw: statuses.append(status))
        return statuses

    def test_interface(self):
        """It provides L{ISIPLegListener}."""
        self.assertTrue(verifyObject(ISIPLegListener, DetachedLegListener()))

    def test_byeAndNotify(self):
        """An in-dialog BYE or NOTIFY is answered 200."""
        self.assertEqual(self.answer("BYE"), [200])
        self.assertEqual(self.answer("NOTIFY"), [200])

    def test_other(self):
        """Any other in-dialog request is answered 481."""
        self.assertEqual(self.answer("INFO"), [481])
        self.assertEqual(self.answer("INVITE"), [481])
