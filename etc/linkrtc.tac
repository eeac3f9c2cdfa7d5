# A .tac file for LinkRTC: `twistd -ny etc/linkrtc.tac`.
#
# It builds the same service as `twistd linkrtc`, from Python. Change the
# LinkRTCConfig fields below (see docs/configuration.rst).

from twisted.application.service import Application

from linkrtc.config import LinkRTCConfig
from linkrtc.tap import installReactor

reactor = installReactor()

from linkrtc.service import makeLinkRTCService  # noqa: E402

config = LinkRTCConfig(
    sip=("udp:5060:interface=127.0.0.1", "tcp:5060:interface=127.0.0.1"),
    http="tcp:8080:interface=127.0.0.1",
    media="bridge",
    ringTimeout=60.0,
)

application = Application("linkrtc")
makeLinkRTCService(config, reactor).setServiceParent(application)
