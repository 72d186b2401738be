"""A test stand-in for the fwledger gateway, built from real parts, on 127.0.0.1 only:

- certificates made with the `openssl` CLI (a gateway CA, the broker's and HTTPS server's
  certificate with SANs 127.0.0.1/localhost, the gateway's client certificate, device
  certificates with CN = device id and PKCS#8 keys);
- a real mosquitto with TLS, require_certificate, use_identity_as_username and the fwledger ACL;
- a static HTTPS file server (Python http.server + ssl, client certificates required) with
  Range/206/416 and fault modes (cut the first response, stall);
- notices published retained with `mosquitto_pub` (CBOR {1: 1, 2: manifest, 3: url, 4: time}),
  status reports collected with `mosquitto_sub`;
- provisioning bundles in the format of `fwledger gateway device add`.
Everything is stopped by close().
"""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WAIT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, timeout=60, **kw)


# ------------------------------------------------------------------------------------- CBOR

def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise ValueError(n)


def notice(manifest: bytes, url: str, gateway_time=None) -> bytes:
    """The deterministic CBOR notice of docs/PROTOCOL.md §12."""
    fields = [(1, _head(0, 1)), (2, _head(2, len(manifest)) + manifest),
              (3, _head(3, len(url.encode())) + url.encode())]
    if gateway_time is not None:
        fields.append((4, _head(0, gateway_time)))
    out = _head(5, len(fields))
    for key, value in fields:
        out += _head(0, key) + value
    return out


# -------------------------------------------------------------------------------------- PKI

class Pki:
    def __init__(self, dir: Path):
        self.dir = dir
        dir.mkdir(parents=True, exist_ok=True)
        self.ca_key, self.ca = dir / "ca.key", dir / "ca.pem"
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", self.ca_key, "-out", self.ca, "-days", "2",
             "-subj", "/CN=fwledger test gateway CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"])

    def issue(self, cn: str, server: bool = False):
        key, csr, cert = self.dir / f"{cn}.key", self.dir / f"{cn}.csr", self.dir / f"{cn}.pem"
        ext = self.dir / f"{cn}.ext"
        if server:
            ext.write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                           "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        else:
            ext.write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
        # genpkey writes PKCS#8, as the bundle's device_key_pem.
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", key])
        run(["openssl", "req", "-new", "-key", key, "-out", csr, "-subj", f"/CN={cn}"])
        run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
             "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext])
        return cert, key


# ---------------------------------------------------------------------------------- mosquitto

ACL = """user gateway
topic readwrite fwledger/v1/#

pattern write fwledger/v1/dev/%u/status
pattern write fwledger/v1/dev/%u/check
pattern read fwledger/v1/dev/%u/notice
"""


class Broker:
    def __init__(self, pki: Pki, dir: Path):
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        cert, key = pki.issue("broker", server=True)
        (dir / "acl").write_text(ACL)
        for _ in range(5):
            self.port = free_port()
            conf = dir / "mosquitto.conf"
            conf.write_text(
                f"user root\npersistence false\nlog_dest stderr\nlog_type error\n"
                f"log_type warning\nlistener {self.port} 127.0.0.1\n"
                f"cafile {pki.ca}\ncertfile {cert}\nkeyfile {key}\n"
                f"require_certificate true\nuse_identity_as_username true\n"
                f"acl_file {dir / 'acl'}\n")
            self.log = open(dir / "mosquitto.log", "w")
            self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=self.log,
                                         stderr=subprocess.STDOUT)
            deadline = time.time() + 10
            while time.time() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                    return
                except OSError:
                    time.sleep(0.05)
            self.close()
        raise RuntimeError("mosquitto did not start")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ------------------------------------------------------------------------------ HTTPS server

class FileServer:
    """Serves registered byte strings at /fw/<name>. Modes: normal, cut_once:N, stall."""

    def __init__(self, pki: Pki, dir: Path):
        self.files = {}
        self.log = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        cert, key = pki.issue("https", server=True)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                with server.lock:
                    server.log.append({"path": self.path, "range": rng})
                    entry = server.files.get(self.path)
                    if entry is not None:
                        entry["requests"] += 1
                if entry is None:
                    self.send_error(404)
                    return
                data, mode = entry["data"], entry["mode"]
                start, end = 0, len(data) - 1
                status = 200
                if rng:
                    try:
                        unit, spec = rng.split("=", 1)
                        a, b = spec.split("-", 1)
                        assert unit.strip() == "bytes"
                        start = int(a)
                        end = min(int(b), len(data) - 1) if b else len(data) - 1
                    except (ValueError, AssertionError):
                        self.send_error(400)
                        return
                    if start >= len(data) or start > end:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:end + 1]
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", f'"{entry["sha256"]}"')
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                self.end_headers()
                if mode.startswith("cut_once:") and entry["requests"] == 1:
                    self.wfile.write(body[:int(mode.split(":")[1])])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if mode == "stall":
                    self.wfile.write(body[:1000])
                    self.wfile.flush()
                    server.closing.wait(30)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.load_verify_locations(pki.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED  # the device shows its certificate
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"https://127.0.0.1:{self.port}/fw/{name}"

    def add(self, name: str, data: bytes, sha256: str = "", mode: str = "normal") -> str:
        with self.lock:
            self.files[f"/fw/{name}"] = {"data": data, "mode": mode, "requests": 0,
                                         "sha256": sha256}
        return self.url(name)

    def requests(self):
        with self.lock:
            return list(self.log)

    def close(self):
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# ------------------------------------------------------------------------------------ gateway

class Gateway:
    """PKI + broker + file server + status collector; makes bundles and publishes notices."""

    def __init__(self, dir: Path):
        self.dir = dir
        dir.mkdir(parents=True, exist_ok=True)
        self.pki = Pki(dir / "pki")
        self.broker = Broker(self.pki, dir)
        self.files = FileServer(self.pki, dir)
        self.gw_cert, self.gw_key = self.pki.issue("gateway")
        self.status_file = dir / "status.log"
        self._sub_out = open(self.status_file, "w")
        sub = ["mosquitto_sub", *self._tls(), "-t", "fwledger/v1/dev/+/status", "-v", "-q", "1"]
        if shutil.which("stdbuf"):
            sub = ["stdbuf", "-oL", *sub]
        self.sub = subprocess.Popen(sub, stdout=self._sub_out, stderr=subprocess.STDOUT)
        # Wait until the subscription is live: our own probe must come back.
        deadline = time.time() + 15
        while time.time() < deadline:
            run(["mosquitto_pub", *self._tls(), "-t", "fwledger/v1/dev/probe/status",
                 "-m", "{}", "-q", "1"])
            time.sleep(0.3)
            if "fwledger/v1/dev/probe/status" in self.status_file.read_text():
                return
        raise RuntimeError("mosquitto_sub did not subscribe:\n" + self.status_file.read_text())

    def _tls(self):
        return ["-h", "127.0.0.1", "-p", str(self.broker.port), "--cafile", str(self.pki.ca),
                "--cert", str(self.gw_cert), "--key", str(self.gw_key)]

    def bundle(self, device_id: str, vendor_keys, path: Path, model="lamp", hardware="rev-b"):
        cert, key = self.pki.issue(device_id)
        bundle = {
            "format": 1, "device_id": device_id, "mac": "02:00:00:00:00:01", "model": model,
            "hardware": hardware, "mqtt_url": f"mqtts://127.0.0.1:{self.broker.port}",
            "http_url": f"https://127.0.0.1:{self.files.port}",
            "ca_cert_pem": self.pki.ca.read_text(), "device_cert_pem": cert.read_text(),
            "device_key_pem": key.read_text(),
            "vendors": [{"name": f"vendor{i}", "key": k} for i, k in enumerate(vendor_keys)],
        }
        path.write_text(json.dumps(bundle, indent=2))
        return path

    def notify(self, device_id: str, payload: bytes):
        """Publishes a retained notice (empty payload: clears it)."""
        f = self.dir / "notice.cbor"
        f.write_bytes(payload)
        args = ["-f", str(f)] if payload else ["-n"]
        run(["mosquitto_pub", *self._tls(), "-t", f"fwledger/v1/dev/{device_id}/notice",
             *args, "-r", "-q", "1"])

    def statuses(self, device_id: str):
        topic = f"fwledger/v1/dev/{device_id}/status"
        out = []
        for line in self.status_file.read_text().splitlines():
            if line.startswith(topic + " "):
                out.append(json.loads(line[len(topic) + 1:]))
        return out

    def wait_status(self, device_id: str, pred, skip=0, timeout=WAIT, what="status"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for s in self.statuses(device_id)[skip:]:
                if pred(s):
                    return s
            time.sleep(0.1)
        raise AssertionError(f"no {what} from {device_id} within {timeout} s; got:\n" +
                             "\n".join(json.dumps(s) for s in self.statuses(device_id)))

    def wait_state(self, device_id: str, state: str, skip=0, timeout=WAIT):
        return self.wait_status(device_id, lambda s: s.get("state") == state, skip, timeout,
                                f"state {state!r}")

    def close(self):
        for p in (self.sub,):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        self._sub_out.close()
        self.files.close()
        self.broker.close()


# ------------------------------------------------------------------------------------- device

class Device:
    """The C device program (fwledger-device-c); re-executes itself on updates (same PID)."""

    def __init__(self, exe: str, bundle: Path, state: Path, log_dir: Path, *extra, env=None):
        self.args = [exe, "--bundle", str(bundle), "--state", str(state), *extra]
        self.state = state
        self.log_dir = log_dir
        self.env = dict(os.environ, **(env or {}))
        self.runs = 0
        self.start()

    def start(self):
        if self.runs > 0:
            self.out.close()
            self.err.close()
        self.runs += 1
        self.out = open(self.log_dir / f"device-{self.runs}.out", "w")
        self.err = open(self.log_dir / f"device-{self.runs}.err", "w")
        self.proc = subprocess.Popen(self.args, stdout=self.out, stderr=self.err, env=self.env)
        self.pid = self.proc.pid

    def wait_exit(self, timeout=WAIT):
        return self.proc.wait(timeout)

    def record(self):
        return json.loads((self.state / "record").read_text())

    def logs(self):
        text = ""
        for i in range(1, self.runs + 1):
            for kind in ("out", "err"):
                p = self.log_dir / f"device-{i}.{kind}"
                if p.exists():
                    text += f"--- run {i} std{kind}\n" + p.read_text()
        return text

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.err.close()
        return self.proc.returncode
