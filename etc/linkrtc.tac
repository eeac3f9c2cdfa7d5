# A .tac file for LinkRTC: `twistd -ny etc/linkrtc.tac`.
#
# It builds the same service as `twistd linkrtc`, from Python. Change the
# LinkRTCConfig fields below (see docs/configuration.rst). Every value is
# checked as on the command line; a bad one stops twistd with one line.

from twisted.application.service import Application

from linkrtc.config import configOrExit
from linkrtc.tap import installReactor

reactor = installReactor()

from linkrtc.service import makeLinkRTCService  # noqa: E402

config = configOrExit(
    sip=("udp:5060:interface=127.0.0.1", "tcp:5060:interface=127.0.0.1"),
    http="tcp:8080:interface=127.0.0.1",
    media="bridge",
    ringTimeout=60.0,
)

application = Application("linkrtc")
makeLinkRTCService(config, reactor).setServiceParent(application)
