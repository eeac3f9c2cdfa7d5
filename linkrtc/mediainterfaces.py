# -*- test-case-name: linkrtc.media.test -*-
"""
The media seam: the one way the call engine (L{linkrtc.call}) talks to
media (L{linkrtc.media}, L{linkrtc.call.passthrough}), and back. Kept
with the other layers' interfaces in L{linkrtc.interfaces}, which gives
these names too. Shapes of messages, units and sources are given in each
docstring.
"""

from zope.interface import Attribute, Interface


class IMediaFactory(Interface):
    """
    Makes the media side of calls: C{--media passthrough} (the SIP offer
    goes to the client as is, seed 000 §3) or C{--media bridge} (LinkRTC
    terminates RTP and WebRTC and joins them).
    """

    name = Attribute("C{'passthrough'} or C{'bridge'}.")

    def newSession(callId, listener):
        """
        @param callId: the call's id, C{str}, for logs.
        @param listener: an L{IMediaListener} told of media events.
        @return: a new L{IMediaSession}.
        """


class IMediaSession(Interface):
    """
    One call's media. SDP is C{str} on the client (WebRTC) side and C{bytes}
    on the SIP side. Every method returns a L{Deferred}; a failure with
    L{linkrtc.error.MediaError} means the SDP is unacceptable (488 / client
    C{error}).
    """

    def clientOffer(sipOffer):
        """
        The call is about to ring a client.

        @param sipOffer: the INVITE's SDP (C{bytes}) or C{None} for an
            offerless INVITE.
        @return: L{Deferred} firing with the SDP offer for the client's
            C{incoming} message (C{str}), or C{None} when the client must
            make the offer itself (offerless INVITE in passthrough).
        """

    def sipAnswer(clientSdp):
        """
        The client accepted with C{clientSdp} (C{str}: its answer, or its
        offer for an offerless INVITE).

        @return: L{Deferred} firing with the SDP (C{bytes}) for the 200 OK.
        """

    def sipAckBody(sdp):
        """
        The ACK of an offerless INVITE carried the SIP side's answer.

        @return: L{Deferred} firing with the SDP (C{str}) to send the client
            as C{{"type": "answer"}}, or C{None} if nothing is to be sent.
        """

    def sipReoffer(sdp):
        """
        A re-INVITE (hold, unhold, new address) carried C{sdp} (C{bytes}).

        @return: L{Deferred} firing with C{(answerSdp, hold)}: the SDP
            (C{bytes}) for the 200 OK and C{True}/C{False} whether the far
            end put the call on hold.
        """

    def sendDigits(digits):
        """Send DTMF C{digits} (C{str} of 0-9*#A-D) to the SIP side (RFC 4733)."""

    def stats():
        """@return: C{dict} of media figures for the CDR (packets, lost, jitter per leg)."""

    def close():
        """Release ports, tasks and peer connections. @return: L{Deferred}."""


class IResumableMediaSession(IMediaSession):
    """
    A media session whose WebRTC leg can be rebuilt for a client that came
    back on a new connection (bridge mode): the SIP side of the call stays
    as it is meanwhile.
    """

    def clientDetached():
        """
        The client's connection is gone: drop its WebRTC leg. Until
        L{clientResumed}, the SIP side hears silence in its codec and the
        media timeout does not run.
        """

    def clientResumed(clientOffer):
        """
        The client came back with a new offer (C{str}): answer it with a new
        WebRTC leg joined to the SIP side as before (relay or transcode).

        @return: L{Deferred} firing with the answer SDP (C{str}); fails with
            L{linkrtc.error.MediaError} for an unusable offer, or when no
            client is detached (the session then stays as it was).
        """


class IMediaListener(Interface):
    """What the call hears from its media session."""

    def mediaDigits(digits):
        """DTMF arrived from the SIP side (once per key press), C{str}."""

    def mediaTimeout():
        """No RTP from the SIP side for the media timeout (seconds, configurable)."""


# --------------------------------------------------------------------------
# Outbound calls: the media side.
# --------------------------------------------------------------------------


class IOutboundMediaSession(IMediaSession):
    """
    An L{IMediaSession} that can also place calls (client -> SIP): the
    client makes the offer. Both media factories' sessions provide it.
    """

    def sipOffer(clientOffer, codecs=None):
        """
        The client's C{call} carried C{clientOffer} (C{str}).

        @param codecs: encoding names the trunk allows (C{["PCMU",
            "telephone-event"]}), any case; C{None} or empty: all.
        A keyword C{srtp} (the trunk's setting, C{"optional"} or
        C{"required"}: SDES-SRTP in bridge mode, RFC 4568) is passed too
        when the trunk's is not C{"off"}; both modes' sessions take it.
        @return: L{Deferred} firing with the SDP offer (C{bytes}) for the
            INVITE; fails with L{linkrtc.error.MediaError} when the client's
            offer is unusable or no allowed codec is left (488).
        """

    def clientAnswer(sipAnswer):
        """
        The SIP side answered (the SDP of a 18x or of the 2xx, C{bytes}).
        Media starts. Calling it again with the same SDP returns the same
        answer (a 2xx repeating the 183's SDP).

        @return: L{Deferred} firing with the SDP (C{str}) for the client's
            C{answer} message; fails with L{linkrtc.error.MediaError}.
        """

    def hold(onHold):
        """
        The client put the call on hold (C{True}) or took it off (C{False}).
        Bridge mode stops (or resumes) the audio it sends the SIP side (no
        re-INVITE is sent); passthrough does nothing (the client's own media
        does it). The call engine uses L{IReofferMediaSession} instead when
        the session provides it.

        @return: L{Deferred} firing with C{None}.
        """


class IReofferMediaSession(IOutboundMediaSession):
    """
    An L{IOutboundMediaSession} that can re-offer to the SIP side, so that
    the client's C{hold}/C{unhold} becomes a re-INVITE (RFC 3264 §8.4).
    Bridge sessions provide it; passthrough ones do not (there the client's
    own media holds, and the hold stays signalling only).

    The engine calls L{reoffer}, sends the SDP in a re-INVITE, and hands
    the 2xx's SDP to L{reofferAnswered}. Nothing changes in the media until
    then: a failed re-INVITE leaves the call as it was.
    """

    def reoffer(hold):
        """
        Make the SIP side's SDP offer for a re-INVITE: the same ports,
        address, codec and m= lines as the last SDP, the C{o=} version one
        higher, C{a=sendonly} to hold (C{a=inactive} if the far end had
        put us on hold already) or C{a=sendrecv} to take the hold off.

        @param hold: C{True} to hold, C{False} to unhold.
        @return: L{Deferred} firing with the SDP (C{bytes}); fails with
            L{linkrtc.error.MediaError} before the call has media.
        """

    def reofferAnswered(sdp):
        """
        The 2xx to the re-INVITE carried C{sdp} (C{bytes}), the answer to
        the last L{reoffer}: apply it (address, direction). While held, no
        audio goes to the SIP side and the media timeout is paused.

        @return: L{Deferred} firing with C{True} if the call is on hold
            afterwards (ours, or the answer does not flow both ways), else
            C{False}; fails with L{linkrtc.error.MediaError} for an
            unusable answer (the media stays as it was).
        """


# --------------------------------------------------------------------------
# Call-control actions (seed 001, sys.call.*): the media side.
# --------------------------------------------------------------------------


class ICallAudio(Interface):
    """
    The audio of one call leg, as the call-control API's CTI actions drive
    it (seed 001: play, record, send and receive DTMF, connect, conference).
    A bridge media session gives one with C{session.audio()} (its SIP leg;
    on a call with a browser leg only, made with C{session.browserOffer()}
    and C{browserAnswer(sdp)}, the browser leg) and the browser (WebRTC)
    leg's with C{session.browserAudio()}; passthrough sessions have none
    (the media does not cross LinkRTC). Connections and conferences take
    SIP and browser legs alike (docs/media.rst, "The browser leg").

    Audio is handled as 20 ms frames of signed 16-bit mono PCM at
    L{rate} Hz (C{numpy.int16} arrays of C{rate // 50} samples). Decoding
    and encoding run only while an action needs them: a leg with no action,
    connection or conference keeps the packet relay fast path.

    One action at a time (seed 001): starting one while another runs fails
    with L{linkrtc.error.MediaError}. Every action method returns a
    L{Deferred} that fires with a C{dict} result once the action ends
    (completed, stopped by L{stop}, interrupted by a key, or failed); it
    never errbacks for a media problem: C{result["error"]} is then a
    C{str} (C{None} on success), as seed 001's C{on_*_completed} events
    carry it. Times in results are Unix seconds (C{float}).
    """

    rate = Attribute("Sample rate of the PCM frames, Hz (C{int}, 8000 or 16000; "
                     "a browser leg: 16000 with Opus, 8000 with PCMU).")

    def play(content, finishKeys="", repeat=1):
        """
        Play to the far end (seed 001 C{play_start}).

        @param content: a file path (C{str}: WAV, any rate, resampled), or
            the seed's content list (C{list} of C{str} paths, or of
            C{[path, kind]} pairs), played in order.
        @param finishKeys: DTMF keys (C{str}) that stop the playing.
        @param repeat: times to play the whole content (C{int} >= 1).
        @return: L{Deferred} firing with C{{"error": str|None, "begin_time",
            "end_time", "finish_key": str|None}}.
        """

    def record(path, maxSeconds=None, beep=False, finishKeys="", fmt="wav"):
        """
        Record what the far end sends (seed 001 C{record_start}).

        @param path: the file to write (C{str}).
        @param maxSeconds: seconds before the recording ends, or C{None}.
        @param beep: play a short beep first (C{bool}).
        @param finishKeys: DTMF keys (C{str}) that end the recording.
        @param fmt: file format name (C{"wav"}: PCM 16-bit at L{rate};
            others as the implementation documents).
        @return: L{Deferred} firing with C{{"error", "begin_time",
            "end_time", "finish_key", "path"}}.
        """

    def sendDigits(keys):
        """
        Send DTMF (seed 001 C{send_dtmf_start}): RFC 4733 events to a SIP
        leg; in-band ITU-T Q.23 tones to a browser leg (aiortc negotiates
        no telephone-event).

        @param keys: C{str} of 0-9*#A-D.
        @return: L{Deferred} firing with C{{"error", "begin_time", "end_time"}}.
        """

    def receiveDigits(validKeys="0123456789*#", maxKeys=1, finishKeys="#",
                      firstKeyTimeout=45, continuesKeysTimeout=30,
                      playContent=None, playRepeat=0, ifBreakOnKey=True):
        """
        Collect DTMF (seed 001 C{receive_dtmf_start}, parameters as there;
        timeouts in seconds).

        @return: L{Deferred} firing with C{{"error", "begin_time",
            "end_time", "keys": str}}.
        """

    def stop():
        """
        Stop the running action (seed 001 C{*_stop}); its L{Deferred} fires
        with its result as it was. No-op when nothing runs.
        """

    def connect(other, maxSeconds=None, recordPath=None, localVolume=None,
                remoteVolume=None, connectMode=1, schedulePlayTime=None,
                schedulePlayFile=None, schedulePlayLoop=0):
        """
        Join this leg with C{other} (an L{ICallAudio}) so that each hears
        the other (seed 001 C{connect_start}); when both legs have the
        same codec packets may be relayed without decoding.

        @param connectMode: seed 001 C{connect_mode}: 1 both hear each
            other, 2 only C{other} hears this leg, 3 only this leg hears
            C{other}; another value fails with L{linkrtc.error.MediaError}.
        @param schedulePlayTime: Unix seconds at which C{schedulePlayFile}
            is played C{schedulePlayLoop} times to both legs, or C{None}.

        @param maxSeconds: seconds before the connection ends, or C{None}.
        @param recordPath: a WAV file recording both sides, or C{None}.
        @param localVolume: gain for this leg's audio, in dB (C{None}: 0).
        @param remoteVolume: gain for the other leg's audio, in dB.
        @return: L{Deferred} firing with C{{"error", "begin_time",
            "end_time"}} when the connection ends (L{stop} on either leg,
            C{maxSeconds}, or a leg closed).
        """

    def digitsListener(callback):
        """
        @param callback: called with each DTMF key (C{str}) received from
            the far end, once per key press; C{None} to remove it.
        """

    def close():
        """Stop any action and release the decoders and timers."""


class IConference(Interface):
    """
    A conference resource (seed 001 C{conf_enter}/C{conf_exit}): mixes its
    parties' audio so that each hears all the others and not itself
    (numpy, 20 ms frames).
    """

    def enter(audio, maxSeconds=None, volume=None, playFile=None, voiceMode=1):
        """
        @param audio: the party's L{ICallAudio}.
        @param maxSeconds: seconds before the party leaves, or C{None}.
        @param volume: the party's gain, dB (C{None}: 0).
        @param playFile: a WAV played to the conference on entry, or C{None}.
        @param voiceMode: seed 001 C{voice_mode}: 1 hears and is heard, 2 is
            heard only, 3 hears only, 4 neither.
        @return: L{Deferred} firing with C{{"error", "begin_time",
            "end_time"}} when the party leaves.
        """

    def exit(audio):
        """Take C{audio} out of the conference (its L{enter} Deferred fires)."""

    def parties():
        """@return: the number of parties, C{int}."""


class IApplicationMediaSession(IMediaSession):
    """
    A media session an application can drive with no browser (seed 001
    C{answer}, C{construct}, and the CTI actions): LinkRTC's own RTP
    answers or makes the SIP side's SDP, and the call's audio is what
    L{audio}'s actions make of it. Bridge sessions provide it; passthrough
    ones do not (their media does not cross LinkRTC: the call-control API
    then answers -32003, docs/api.rst).

    Use either L{answerLocally} (an incoming INVITE) or the pair
    L{offerLocally} / L{offerAnswered} (an INVITE LinkRTC sends), instead of
    the client methods of L{IMediaSession} / L{IOutboundMediaSession}.
    """

    def audio():
        """
        @return: the SIP leg's L{ICallAudio} (the same object on every call).
        @raise linkrtc.error.MediaError: before the SIP side's media runs or
            after C{close}.
        """

    def answerLocally(sipOffer, codecs=("PCMU", "PCMA")):
        """
        Answer an incoming INVITE's offer with LinkRTC's own RTP.

        @param sipOffer: the INVITE's SDP (C{bytes} or C{str}).
        @param codecs: the codec names accepted (the offer's order wins,
            RFC 3264 §6.1).
        @return: L{Deferred} firing with the SDP answer (C{bytes}) for the
            200 OK; fails with L{linkrtc.error.MediaError} (unusable offer,
            no common codec, no RTP port).
        """

    def offerLocally(codecs=None):
        """
        Make LinkRTC's own RTP offer for an INVITE it sends (seed 001
        C{construct}): an RTP port, the codecs allowed (PCMU, PCMA, G722 and
        telephone-event/8000 on PT 101; C{codecs} narrows them, any case;
        C{None} or empty: all).

        A keyword C{srtp} (the trunk's, when not C{"off"}) asks for an
        SDES-SRTP offer as L{IOutboundMediaSession.sipOffer}'s does.

        @return: L{Deferred} firing with the SDP offer (C{bytes}); fails with
            L{linkrtc.error.MediaError} (no codec left, no RTP port, media
            already set up).
        """

    def offerAnswered(sipAnswer):
        """
        The far end answered L{offerLocally}'s offer (a 18x's or the 2xx's
        SDP, C{bytes}): its codec and address are used and media starts. The
        same SDP again changes nothing.

        @return: L{Deferred} firing with C{None}; fails with
            L{linkrtc.error.MediaError} for an unusable answer.
        """


class IEarlyMediaSession(IMediaSession):
    """
    A media session that can answer an incoming call's SIP offer before the
    client answers (early media, RFC 3960 §3: the gateway model) and play
    a ringback tone meanwhile (bridge mode).
    """

    def earlyAnswer():
        """
        Called when the call rings (after L{IMediaSession.clientOffer}):
        LinkRTC's own answer to the SIP offer, for a 183 Session Progress;
        from then on the caller hears a ringback tone until the client's
        answer (L{IMediaSession.sipAnswer}, whose 200 OK carries the same
        SDP). Synchronous.

        @return: the SDP answer (C{bytes}), or C{None} when the call has no
            early media (switched off, an offerless INVITE, no client offer
            made, already answered): a 180 Ringing then.
        @raise linkrtc.error.MediaError: when the answer cannot be made (no
            RTP port): a 180 then too.
        """


class IPhoneMediaSession(IMediaSession):
    """
    A media session whose incoming call can be answered by a registered
    SIP phone (plain RTP) as well as by a client: the phones of the user
    the call is routed to ring beside its browsers (the fork of
    L{linkrtc.call.sipphones}; docs/clients.rst).
    """

    def phoneOffer(sipOffer):
        """
        The offer for the INVITEs to the phones, the same for every phone
        of the call (bridge: LinkRTC's own RTP address and the codec it
        chose from C{sipOffer}, every relayable codec for an offerless
        INVITE; passthrough: C{sipOffer} as is). May be asked beside
        L{IMediaSession.clientOffer}.

        @param sipOffer: the caller's SDP (C{bytes}) or C{None}.
        @return: L{Deferred} firing with the SDP (C{bytes} or C{str}), or
            C{None} (passthrough, an offerless INVITE: the phones get an
            offerless INVITE, their offer goes to the caller and the
            caller's answer, from L{IMediaSession.sipAckBody}, in their
            ACK), or failing with L{linkrtc.error.MediaError} (an unusable
            offer, no RTP port).
        """

    def phoneAnswer(sdp):
        """
        The phone that answered first: its SDP answer (C{bytes} or C{str})
        to L{phoneOffer}. Used instead of L{IMediaSession.sipAnswer}.

        @return: L{Deferred} firing with the caller's SDP answer (C{bytes})
            for the 200 OK (for an offerless INVITE: our offer, answered
            in the ACK, L{IMediaSession.sipAckBody}), or failing with
            L{linkrtc.error.MediaError}.
        """

    def phoneReoffer(sdp):
        """
        The answering phone's new offer (its re-INVITE or UPDATE: hold,
        resume, a session refresh with SDP), answered as RFC 3264 §6.1
        and §8 say: the direction mirrored (C{sendonly} -> C{recvonly},
        C{inactive} -> C{inactive}, C{sendrecv} -> C{sendrecv}), the o=
        version incremented only when our SDP changes (bridge: LinkRTC's
        RTP address, port and codec as before; passthrough: the caller's
        SDP, only while the phone's address, port and codecs stay).

        @param sdp: the offer (C{bytes} or C{str}).
        @return: L{Deferred} firing with C{(answer, hold)}: the SDP
            (C{bytes}) and C{True} when the offer puts the call on hold
            (C{sendonly}, C{inactive} or c=0.0.0.0); or failing with
            L{linkrtc.error.MediaError} (before the phone answered, an
            unusable offer, a codec or, in passthrough, a media change
            that cannot be done: 488), the media then unchanged.
        """

    def phoneSdp():
        """
        @return: the SDP last sent to the answering phone (C{bytes}; its
            o= version unchanged), what a re-INVITE without SDP (a session
            refresh) gets as the offer in its 2xx (RFC 3261 §14.2), or
            C{None} before any.
        """


class IOfferlessOutboundMediaSession(IOutboundMediaSession):
    """
    An L{IOutboundMediaSession} that can place a call through a trunk
    whose INVITEs carry no SDP (RFC 3261 §13.2.1: the offer comes in the
    2xx, the answer goes in the ACK).
    """

    def ackAnswer(sipOffer):
        """
        The 2xx of our offerless INVITE holds C{sipOffer} (C{bytes}):
        answer it at once (the SIP leg ACKs the 2xx as it arrives). After
        it, L{IOutboundMediaSession.clientAnswer} with the same SDP gives the
        client's answer.

        @return: our SDP answer (C{bytes}) for the ACK, or C{None} when the
            offer is unusable (then C{clientAnswer} fails and the call ends).
        """
