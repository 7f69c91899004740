#!/usr/bin/python3
"""A small MQTT client on Eclipse Paho (python3-paho-mqtt 1.6) for the
telemetry channel tests (tests/integ/test_mqtt_clients.c).

Every line it prints is one event, flushed at once, so the test can wait
for it while the client runs:
  CONNACK rc=N sp=0|1      the broker's answer (sp: session present)
  SUBACK N [N...]          the granted QoS / reason code of each filter
  MSG topic payload qos=N retain=0|1 dup=0|1
  PROPS topic payload K=V [K=V...]   after MSG, when it has v5 user properties
  MID N payload            pub: the packet id given to a publication
  PUBACK mid=N rc=N        pub, v5: the reason code of a PUBACK / PUBREC
  PUBREC mid=N rc=N        (printed before its PUBLISHED line)
  PUBLISHED mid=N          a publication the broker acknowledged
  DISCONNECTED rc=N        the broker (or the network) ended the session
  DONE                     the client finished what it was asked
  HANDSHAKE / SENT / CLOSED SECONDS / OPEN   (raw: bytes instead of MQTT)
  LOST                     the connection ended without our DISCONNECT
Exit status: 0 done, 2 cannot connect or refused, 3 timed out, 4 lost.
With --reconnect (sub, pub) a lost connection is not the end: Paho
reconnects (every 0.5-1 s) with the same session and in-flight state, and
prints DISCONNECTED / CONNACK again.

usage: mqtt_client.py sub|pub|will --port P --cafile F [options]
"""
import argparse
import os
import socket
import ssl
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def say(*words):
    print(*words, flush=True)


def parse():
    # The connection options go after the command, with its own.
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--keypass-file", help="password of an encrypted --key")
    p.add_argument("--tls-version", choices=["1.2", "1.3"])
    p.add_argument("--id", default="")
    p.add_argument("--version", choices=["311", "5"], default="5")
    p.add_argument("--clean", choices=["yes", "no"], default="yes")
    p.add_argument("--expiry", type=int, help="v5 session expiry interval (s)")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--keepalive", type=int, default=30)
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--reconnect", action="store_true",
                   help="reconnect after a lost connection instead of ending")
    top = argparse.ArgumentParser()
    sub = top.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sub", parents=[p])
    s.add_argument("--topic", action="append", default=[])
    s.add_argument("--qos", type=int, default=0)
    s.add_argument("--count", type=int, default=-1,
                   help="messages to wait for (-1: until timeout, 0: none)")
    s.add_argument("--linger", type=float, default=0.0,
                   help="seconds to stay after --count, to see duplicates")
    s.add_argument("--no-subscribe", action="store_true",
                   help="rely on the session's subscriptions")
    w = sub.add_parser("pub", parents=[p])
    w.add_argument("--topic", required=True)
    w.add_argument("--qos", type=int, default=0)
    w.add_argument("--retain", action="store_true")
    w.add_argument("--message", action="append", required=True)
    w.add_argument("--user-prop", action="append", default=[],
                   help="v5 user property K=V of every publication")
    d = sub.add_parser("will", parents=[p])
    d.add_argument("--will-topic", required=True)
    d.add_argument("--will-message", required=True)
    d.add_argument("--will-qos", type=int, default=1)
    r = sub.add_parser("raw", parents=[p],
                       help="TLS (or --plain TCP): send bytes, wait for the close")
    r.add_argument("--plain", action="store_true")
    r.add_argument("--send-hex", default="", help="bytes to send after the handshake")
    return top.parse_args()


def tls_context(a):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=a.cafile)
    # The seeds' server certificates are v1 with the address only in the
    # CN; Python (OpenSSL X509_check_ip) matches an IP address only against
    # a subjectAltName, so the name check is left to the C clients
    # (mosquitto_*, paho_c_*), which do accept the CN. The chain is still
    # verified here.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    if a.tls_version == "1.2":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif a.tls_version == "1.3":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    if a.cert:
        pw = None
        if a.keypass_file:
            with open(a.keypass_file) as f:
                pw = f.readline().rstrip("\n")
        ctx.load_cert_chain(a.cert, a.key, password=pw)
    return ctx


def raw(a):
    """Prints CLOSED SECONDS when the broker closes the connection (exit 0),
    or OPEN when it is still open after --timeout (exit 3)."""
    t0 = time.monotonic()
    try:
        sock = socket.create_connection((a.host, a.port), timeout=a.timeout)
        if not a.plain:
            sock = tls_context(a).wrap_socket(sock, server_hostname=a.host)
            say("HANDSHAKE %s" % sock.version())
        if a.send_hex:
            sock.sendall(bytes.fromhex(a.send_hex))
            say("SENT %d" % (len(a.send_hex) // 2))
        while True:
            left = a.timeout - (time.monotonic() - t0)
            if left <= 0:
                say("OPEN")
                return 3
            sock.settimeout(left)
            if not sock.recv(4096):
                break
    except socket.timeout:
        say("OPEN")
        return 3
    except (ssl.SSLError, OSError) as e:  # reset, alert: closed too
        say("ERROR %s" % e)
    say("CLOSED %.1f" % (time.monotonic() - t0))
    return 0


class AckClient(mqtt.Client):
    """Paho 1.6 passes no reason code to on_publish: print the v5 reason
    code of each PUBACK / PUBREC as it arrives (before on_publish)."""

    def _ack_rc(self, what):
        pkt = self._in_packet["packet"]
        if self._protocol == mqtt.MQTTv5 and len(pkt) >= 2:
            mid = int.from_bytes(pkt[:2], "big")
            say("%s mid=%d rc=%d" % (what, mid, pkt[2] if len(pkt) > 2 else 0))

    def _handle_pubackcomp(self, cmd):
        if cmd == "PUBACK":
            self._ack_rc("PUBACK")
        return super()._handle_pubackcomp(cmd)

    def _handle_pubrec(self):
        self._ack_rc("PUBREC")
        return super()._handle_pubrec()

    # Paho 1.6 lets an SSLError of a broken TLS connection (EOF without
    # close_notify, as when the broker is killed) end its network thread,
    # so it would never reconnect: make it the lost connection it is.
    def _sock_send(self, buf):
        try:
            return super()._sock_send(buf)
        except ssl.SSLError as e:
            raise ConnectionResetError(str(e))

    def _sock_recv(self, bufsize):
        try:
            return super()._sock_recv(bufsize)
        except ssl.SSLError as e:
            raise ConnectionResetError(str(e))


def main():
    a = parse()
    if a.cmd == "raw":
        return raw(a)
    v5 = a.version == "5"
    if v5:
        c = AckClient(client_id=a.id, protocol=mqtt.MQTTv5)
    else:
        c = AckClient(client_id=a.id, clean_session=(a.clean == "yes"),
                      protocol=mqtt.MQTTv311)
    if a.reconnect:
        c.reconnect_delay_set(min_delay=0.5, max_delay=1)
    c.tls_set_context(tls_context(a))
    if a.username is not None:
        c.username_pw_set(a.username, a.password)
    if a.cmd == "will":
        c.will_set(a.will_topic, a.will_message, qos=a.will_qos)

    connected = threading.Event()
    done = threading.Event()
    state = {"rc": None, "got": 0, "pending": set(), "acked": set(), "all_sent": False,
             "lost": False}
    lock = threading.Lock()

    def check_published():
        # An acknowledgement may arrive before publish() has returned its
        # mid: done once every mid given out was acknowledged.
        with lock:
            if state["all_sent"] and state["pending"] <= state["acked"]:
                done.set()

    def on_connect(client, userdata, flags, rc, properties=None):
        code = rc.value if hasattr(rc, "value") else int(rc)
        say("CONNACK rc=%d sp=%d" % (code, flags.get("session present", 0)))
        state["rc"] = code
        connected.set()

    def on_subscribe(client, userdata, mid, granted, properties=None):
        codes = [g.value if hasattr(g, "value") else int(g) for g in granted]
        say("SUBACK " + " ".join(str(x) for x in codes))
        if a.cmd == "sub" and a.count == 0:
            done.set()

    def on_message(client, userdata, m):
        say("MSG %s %s qos=%d retain=%d dup=%d" % (
            m.topic, m.payload.decode("utf-8", "replace"), m.qos, int(m.retain), int(m.dup)))
        up = getattr(getattr(m, "properties", None), "UserProperty", None)
        if up:
            say("PROPS %s %s %s" % (m.topic, m.payload.decode("utf-8", "replace"),
                                    " ".join("%s=%s" % (k, v) for k, v in up)))
        state["got"] += 1
        if a.cmd == "sub" and 0 < a.count <= state["got"]:
            done.set()

    def on_publish(client, userdata, mid):
        say("PUBLISHED mid=%d" % mid)
        with lock:
            state["acked"].add(mid)
        if a.cmd == "pub":
            check_published()

    def on_disconnect(client, userdata, rc, properties=None):
        code = rc.value if hasattr(rc, "value") else int(rc)
        say("DISCONNECTED rc=%d" % code)
        if code != 0 and not a.reconnect:
            # Lost or ended by the broker: stop here, do not reconnect.
            state["lost"] = True
            done.set()
        connected.set()

    c.on_connect = on_connect
    c.on_subscribe = on_subscribe
    c.on_message = on_message
    c.on_publish = on_publish
    c.on_disconnect = on_disconnect

    kw = {"keepalive": a.keepalive}
    if v5:
        kw["clean_start"] = a.clean == "yes"
        if a.expiry is not None:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = a.expiry
            kw["properties"] = props
    try:
        c.connect(a.host, a.port, **kw)
    except Exception as e:  # TLS refusal, connection refused
        say("ERROR %s" % e)
        return 2
    c.loop_start()
    deadline = time.monotonic() + a.timeout
    if not connected.wait(a.timeout) or state["rc"] != 0:
        c.loop_stop()
        return 2

    if a.cmd == "will":
        # End abruptly: no DISCONNECT, no TLS close_notify, so the broker
        # must publish the will.
        os._exit(0)
    if a.cmd == "sub":
        if not a.no_subscribe and a.topic:
            c.subscribe([(t, a.qos) for t in a.topic])
        elif a.count == 0:
            done.set()
        if a.count < 0:
            done.wait(max(0.0, deadline - time.monotonic()))
            done.set()
    else:
        pprops = None
        if a.user_prop:
            pprops = Properties(PacketTypes.PUBLISH)
            pprops.UserProperty = [tuple(u.split("=", 1)) for u in a.user_prop]
        for m in a.message:
            info = c.publish(a.topic, m, qos=a.qos, retain=a.retain, properties=pprops)
            say("MID %d %s" % (info.mid, m))
            if a.qos > 0:
                with lock:
                    state["pending"].add(info.mid)
            else:
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        if a.qos == 0:
            done.set()
        with lock:
            state["all_sent"] = True
        check_published()
    ok = done.wait(max(0.0, deadline - time.monotonic()))
    if state["lost"]:
        c.loop_stop()
        say("LOST")
        return 4
    if ok and a.cmd == "sub" and a.linger > 0:
        time.sleep(a.linger)
    c.disconnect()
    c.loop_stop()
    if not ok:
        say("TIMEOUT")
        return 3
    say("DONE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
